"""The job and night settings: grouped, described, strict; and the flat names of deployments
registered before the grouping, moved to their fields by ``setup``."""

from __future__ import annotations

import pytest
from prefect.exceptions import ParameterTypeError

from runtype_prefect.engine.settings import (
    FORMER_NAMES,
    JobSettings,
    NightSettings,
    upgrade_parameters,
)
from runtype_prefect.flows import backfill, nightly, repair_night, run_record_type


def _described(schema: dict) -> list[str]:
    """Return the dotted names of every settings field in a flow's parameter schema that has
    no description (what the Prefect UI shows under each field)."""
    definitions = schema.get("definitions", {})
    missing = []
    for name, definition in definitions.items():
        for field, spec in definition.get("properties", {}).items():
            # A group's description is its model's (pydantic leaves it off the reference).
            ref = spec.get("$ref", "").rsplit("/", 1)[-1]
            if not (spec.get("description") or definitions.get(ref, {}).get("description")):
                missing.append(f"{name}.{field}")
    return missing


@pytest.mark.parametrize(
    "flow", [run_record_type, nightly, backfill, repair_night], ids=lambda f: f.name
)
def test_every_parameter_and_settings_field_is_described_for_the_ui(flow):
    schema = flow.parameters.model_dump()
    assert _described(schema) == []
    assert all(spec.get("description") for spec in schema["properties"].values())
    assert "JobSettings" in schema["definitions"] and "Waiting" in schema["definitions"]


def test_every_former_name_lands_in_a_field_that_exists():
    for name, path in FORMER_NAMES.items():
        model: type = JobSettings if path[0] == "settings" else NightSettings
        for part in path[1:-1]:
            model = model.model_fields[part].annotation
        assert path[-1] in model.model_fields, (name, path)


def test_former_names_move_to_their_fields_and_a_value_under_the_new_name_wins():
    upgraded, moves = upgrade_parameters(
        {
            "jobs_file": "jobs.yaml",
            "timeout_seconds": 60,
            "max_cost_usd_per_job": 2.0,
            "quality_gate": False,
            "settings": {"waiting": {"poll_interval_seconds": 1.0, "timeout_seconds": 30}},
        },
        {"jobs_file", "settings", "night"},
    )
    assert upgraded == {
        "jobs_file": "jobs.yaml",
        "settings": {
            "waiting": {"poll_interval_seconds": 1.0, "timeout_seconds": 30},
            "money": {"max_cost_usd": 2.0},
        },
        "night": {"quality": {"enabled": False}},
    }
    assert moves == [
        "parameter 'timeout_seconds' is now 'settings.waiting.timeout_seconds'",
        "parameter 'max_cost_usd_per_job' is now 'settings.money.max_cost_usd'",
        "parameter 'quality_gate' is now 'night.quality.enabled'",
    ]


def test_a_night_name_is_not_moved_for_a_flow_without_a_night():
    upgraded, moves = upgrade_parameters({"max_concurrent_jobs": 2}, {"settings"})
    assert upgraded == {"max_concurrent_jobs": 2} and moves == []


def test_a_misspelt_setting_is_refused_naming_it():
    with pytest.raises(ParameterTypeError, match=r"settings\.waiting\.timout_seconds"):
        run_record_type.validate_parameters(
            {"flow_id": "f", "record_type": "t", "settings": {"waiting": {"timout_seconds": 1}}}
        )


@pytest.mark.usefixtures("prefect_api")
def test_setup_rewrites_deployments_and_their_scheduled_runs_still_holding_flat_names():
    """A deployment registered before the settings were grouped holds flat names, and so do
    the runs its schedule created: a worker could not bind them to the flow. ``setup``
    rewrites both, once, naming each move."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    from runtype_prefect.orchestration.provisioning import upgrade_deployments

    flat = {"jobs_file": "jobs.yaml", "timeout_seconds": 60, "quality_gate": False}
    deployment_id = nightly.to_deployment(name="registered-flat", parameters=flat).apply()
    with get_client(sync_client=True) as client:
        later = Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"max_concurrent_jobs": 2}, state=later
        )
        try:
            lines = upgrade_deployments()
            again = upgrade_deployments()
            stored = client.read_deployment(deployment_id).parameters
            scheduled = client.read_flow_run(run.id).parameters
        finally:
            client.delete_deployment(deployment_id)
    assert lines == [
        "deployment runtype-nightly/registered-flat (and 1 scheduled runs):"
        " parameter 'timeout_seconds' is now 'settings.waiting.timeout_seconds';"
        " parameter 'quality_gate' is now 'night.quality.enabled'"
    ]
    assert again == []
    assert stored == {
        "jobs_file": "jobs.yaml",
        "settings": {"waiting": {"timeout_seconds": 60}},
        "night": {"quality": {"enabled": False}},
    }
    assert scheduled["night"]["max_concurrent_jobs"] == 2 and "max_concurrent_jobs" not in scheduled
    assert nightly.validate_parameters(scheduled)["night"].max_concurrent_jobs == 2


@pytest.mark.parametrize(
    "flow", [run_record_type, nightly, backfill, repair_night], ids=lambda f: f.name
)
def test_a_served_flow_pickled_by_value_still_validates_its_settings(flow):
    """A served deployment runs its flow in a child process from a cloudpickle of it, which
    carries only the names the flow's body uses: the settings types must come with the
    annotations themselves (no postponed annotations in the flow modules)."""
    import pickle

    import cloudpickle

    shipped = pickle.loads(cloudpickle.dumps(flow))
    required = {
        run_record_type: {"flow_id": "f", "record_type": "t"},
        repair_night: {"flow_id": "f", "record_type": "t", "run_key": "2026-12-06"},
    }.get(flow, {})
    validated = shipped.validate_parameters({**required, "settings": {"force": True}})
    assert isinstance(validated["settings"], JobSettings) and validated["settings"].force

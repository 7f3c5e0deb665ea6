"""The job and night settings: grouped, described, strict, and the flat names of deployments
written before the grouping still run (moved to their field)."""

from __future__ import annotations

import logging

import pytest
from prefect.exceptions import ParameterTypeError
from prefect.flow_engine import run_flow

from runtype_prefect.engine.outcomes import Outcome
from runtype_prefect.engine.settings import (
    FORMER_NAMES,
    JobSettings,
    NightSettings,
    upgrade_parameters,
)
from runtype_prefect.flows import backfill, nightly, run_record_type
from runtype_prefect.warehouse import Warehouse


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


@pytest.mark.parametrize("flow", [run_record_type, nightly, backfill], ids=lambda f: f.name)
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


@pytest.mark.usefixtures("prefect_api", "runtype_env")
def test_a_deployment_passing_former_flat_names_still_runs_and_says_where_they_moved(
    admin, tmp_path, caplog
):
    """What a worker does with an old deployment's parameters: the flow runs from a parameter
    dict (Prefect's engine validates it), not from a Python call."""
    db = str(tmp_path / "runtype.duckdb")
    flat = {
        "flow_id": admin.flow_for("customer"),
        "record_type": "customer",
        "run_key": "2026-11-02",
        "db_path": db,
        "poll_interval_seconds": 0.02,
        "max_poll_interval_seconds": 0.1,
        "min_success_rate": 0.25,
    }
    with caplog.at_level(logging.WARNING):
        result = run_flow(run_record_type, parameters=flat)
    assert result.outcome in (Outcome.COMPLETED, Outcome.COMPLETED_WITH_FAILURES)
    assert result.records == 40
    with Warehouse(db) as w:
        assert w.query("SELECT count(*) FROM record_results")[0][0] == 40
    assert "parameter 'db_path' is now 'settings.db_path'" in caplog.text
    assert "'min_success_rate' is now 'settings.judgement.min_success_rate'" in caplog.text


@pytest.mark.parametrize("flow", [run_record_type, nightly, backfill], ids=lambda f: f.name)
def test_a_served_flow_pickled_by_value_still_validates_its_settings(flow):
    """A served deployment runs its flow in a child process from a cloudpickle of it, which
    carries only the names the flow's body uses: the settings types must come with the
    annotations themselves (no postponed annotations in the flow modules)."""
    import pickle

    import cloudpickle

    shipped = pickle.loads(cloudpickle.dumps(flow))
    required = {"flow_id": "f", "record_type": "t"} if flow is run_record_type else {}
    validated = shipped.validate_parameters({**required, "settings": {"force": True}})
    assert isinstance(validated["settings"], JobSettings) and validated["settings"].force

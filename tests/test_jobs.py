"""Jobs from YAML files and from discovery, with clear errors for bad files."""

from __future__ import annotations

import pytest

from runtype_prefect.client import RuntypeClient
from runtype_prefect.engine.jobs import Job, JobsFileError, discover_jobs, load_jobs
from runtype_prefect.sandbox.world import RECORD_TYPE_SIZES


def test_load_jobs(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "jobs:\n  - {flow_id: flow_1, record_type: lead, name: Leads}\n"
        "  - {flow_id: flow_2, record_type: ticket}\n"
    )
    assert load_jobs(path) == [
        Job(flow_id="flow_1", record_type="lead", name="Leads"),
        Job(flow_id="flow_2", record_type="ticket"),
    ]
    assert load_jobs(path)[1].label == "ticket/flow_2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("jobs: [", "not valid YAML"),
        ("flows: []", "needs a non-empty 'jobs:' list"),
        ("jobs:\n  - {flow_id: f}\n", "job #1"),
    ],
)
def test_bad_jobs_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "jobs.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(JobsFileError, match=message):
        load_jobs(path)


def test_discovery_pairs_flows_with_every_record_type(sandbox):
    with RuntypeClient(sandbox.api_key, sandbox.base_url) as client:
        jobs = discover_jobs(client, ["flow_a", "flow_b"])
    assert len(jobs) == 2 * len(RECORD_TYPE_SIZES)
    assert {j.record_type for j in jobs} == set(RECORD_TYPE_SIZES)


def test_unnamed_jobs_are_named_after_their_flows_and_stay_apart():
    from runtype_prefect.engine.jobs import named_after_flows

    jobs = [
        Job(flow_id="f1", record_type="lead"),
        Job(flow_id="f1", record_type="ticket"),
        Job(flow_id="f2", record_type="customer"),
        Job(flow_id="f2", record_type="vip", name="VIP"),
        Job(flow_id="f3", record_type="x"),
    ]
    named = named_after_flows(jobs, {"f1": "Lead Enrichment", "f2": "Health"})
    assert [j.label for j in named] == [
        "Lead Enrichment · lead",
        "Lead Enrichment · ticket",
        "Health · customer",  # f2 has two jobs here: one named, one not
        "VIP",
        "x/f3",  # no name known: as before
    ]
    assert [j.display for j in named[:2]] == ["Lead Enrichment · lead", "Lead Enrichment · ticket"]
    assert named_after_flows(jobs[2:3], {"f2": "Health"})[0].display == "Health · customer"

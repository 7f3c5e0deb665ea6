"""Jobs: "run Runtype flow F over record type T", from parameters, a YAML file or discovery."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from ..client import RuntypeClient
from ..warehouse import JobKey
from .errors import StopError
from .settings import JobSettings, Mode


class Job(BaseModel):
    """One nightly job: a Runtype flow over every record of one record type."""

    flow_id: str = Field(min_length=1, description="The Runtype flow to run")
    record_type: str = Field(min_length=1, description="The record type it runs over")
    name: str | None = Field(
        None, description="The job's name in the UI and the tables; empty: the flow's name"
    )
    mode: Mode | None = Field(
        None,
        description="full or incremental for this job, unless the run's settings set a mode;"
        " empty: full",
    )

    @property
    def label(self) -> str:
        """A readable name: ``name`` if given, else ``record_type/flow_id``."""
        return self.name or f"{self.record_type}/{self.flow_id}"

    @property
    def display(self) -> str:
        """The job as run names show it: ``Lead Enrichment · lead`` (the flow id without a
        name; the name alone when it already ends with the record type)."""
        suffix = f" · {self.record_type}"
        name = self.name or self.flow_id
        return name if name.endswith(suffix) else name + suffix

    def key(self, run_key: str, part: str = "") -> JobKey:
        """Return this job's key in the start ledger for the night ``run_key`` (and ``part``
        of it: "" for the run over the whole record type)."""
        return JobKey(self.flow_id, self.record_type, run_key, part)


@dataclass(frozen=True)
class JobRun:
    """One job's run for one run key: what the engine's steps and the Prefect tasks pass
    around instead of a list of arguments."""

    job: Job
    run_key: str
    settings: JobSettings = field(default_factory=JobSettings)
    #: The Prefect flow run holding this job, and its root (the nightly), when there is one.
    flow_run_id: str | None = None
    root_flow_run_id: str | None = None
    #: Which part of the night this run starts ("": the whole record type) and, for a part
    #: over chosen records, exactly which records.
    part: str = ""
    record_ids: tuple[str, ...] | None = None

    @property
    def key(self) -> JobKey:
        """The job-night's key in the start ledger (with its part)."""
        return self.job.key(self.run_key, self.part)

    @property
    def mode(self) -> Mode:
        """The run's mode: the settings' when they set one (a weekly full refresh overrides
        the jobs file), else the job's own, else full."""
        return self.settings.mode or self.job.mode or Mode.FULL


class JobsFileError(StopError, ValueError):
    """The jobs file is missing or does not describe a list of jobs."""


def load_jobs(path: str | Path) -> list[Job]:
    """Return the jobs of a YAML file shaped ``jobs: [{flow_id, record_type, name?}, ...]``.

    Raises `JobsFileError` naming the file and the problem.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise JobsFileError(f"jobs file {str(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise JobsFileError(f"jobs file {str(path)!r} is not valid YAML: {exc}") from None
    entries = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise JobsFileError(f"jobs file {str(path)!r} needs a non-empty 'jobs:' list")
    jobs = []
    for index, entry in enumerate(entries):
        try:
            jobs.append(Job.model_validate(entry))
        except ValidationError as exc:
            raise JobsFileError(f"jobs file {str(path)!r}, job #{index + 1}: {exc}") from None
    return jobs


def named_after_flows(jobs: list[Job], flow_names: dict[str, str]) -> list[Job]:
    """Return ``jobs`` with each unnamed one named after its flow (``flow_names``: flow id →
    name), so runs, tables and events show "Lead Enrichment", not a flow id. A job's name is
    its identity, so jobs sharing a flow add their record type: "Lead Enrichment · ticket"."""
    per_flow = Counter(job.flow_id for job in jobs)
    named = []
    for job in jobs:
        flow_name = flow_names.get(job.flow_id)
        if job.name is not None or flow_name is None:
            named.append(job)
            continue
        name = flow_name if per_flow[job.flow_id] == 1 else f"{flow_name} · {job.record_type}"
        named.append(job.model_copy(update={"name": name}))
    return named


def discover_jobs(client: RuntypeClient, flow_ids: list[str]) -> list[Job]:
    """Return one job per flow in ``flow_ids`` per record type found by paging the records
    (unnamed: the preflight, which reads every flow, names them after their flows)."""
    record_types = client.list_record_types()
    return [Job(flow_id=f, record_type=t) for f in flow_ids for t in record_types]

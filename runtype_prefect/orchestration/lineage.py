"""Lineage in the Prefect UI: what the runs materialize, as Prefect assets.

Landing a job's batch materializes the job's warehouse tables (its record results and step
results), downstream of the Runtype flow it ran; publishing materializes the analytics
snapshot, downstream of the tables landed; writing the report materializes the report,
downstream of the snapshot. Each carries the rows, night and batch as metadata, so the UI's
asset graph reads Runtype flow → tables → snapshot → report.

Asset keys are URIs: ``runtype://flows/<flow id>``, ``duckdb://<warehouse file>/<table>/<flow
id>/<record type>`` (or the shared location's URL in place of ``duckdb://<file>``),
``duckdb://<snapshot file>`` and ``file://<report>``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from prefect.assets import Asset, AssetProperties, add_asset_metadata

from ..engine.jobs import Job
from ..warehouse import is_shared_location
from ..warehouse.opening import location_key
from ..warehouse.store import snapshot_path_for

#: What a materializing task declares until its caller names the assets it writes
#: (``with_options(assets=...)``): the warehouse as a whole.
WAREHOUSE_ASSET = "duckdb://runtype-warehouse"
#: The tables a landing writes, per job.
JOB_TABLES = ("record_results", "step_results")


def _location_uri(db_path: str | os.PathLike[str] | None) -> str:
    key = location_key(db_path)
    return key if is_shared_location(key) else f"duckdb://{Path(key).as_posix()}"


def flow_asset(job: Job) -> Asset:
    """Return the Runtype flow a job runs, as the upstream asset of its tables."""
    return Asset(
        key=f"runtype://flows/{job.flow_id}",
        properties=AssetProperties(
            name=f"Runtype flow {job.name or job.flow_id}",
            description="A Runtype AI flow; its batches land in the warehouse tables below.",
        ),
    )


def table_assets(db_path: str | os.PathLike[str] | None, job: Job) -> list[Asset]:
    """Return the warehouse tables a landing of ``job`` writes, as assets (one per table)."""
    base = _location_uri(db_path)
    return [
        Asset(
            key=f"{base}/{table}/{job.flow_id}/{job.record_type}",
            properties=AssetProperties(
                name=f"{table} · {job.label}",
                description=f"The {table.replace('_', ' ')} of {job.label} in the warehouse.",
            ),
        )
        for table in JOB_TABLES
    ]


def snapshot_asset(db_path: str | os.PathLike[str] | None) -> Asset:
    """Return the analytics snapshot the warehouse publishes, as an asset."""
    key = location_key(db_path)
    shared = is_shared_location(key)
    return Asset(
        key=f"{key}/analytics-snapshot" if shared else f"duckdb://{snapshot_path_for(Path(key))}",
        properties=AssetProperties(
            name="analytics snapshot",
            description="What the notebooks and the report read: the warehouse's tables and"
            " the SQL views of analytics/.",
        ),
    )


def report_asset(path: str | os.PathLike[str]) -> Asset:
    """Return the HTML report at ``path``, as an asset."""
    return Asset(
        key=f"file://{Path(path).resolve().as_posix()}",
        properties=AssetProperties(
            name="HTML report", description="The static report: one self-contained HTML page."
        ),
    )


def describe_materialized(asset: Asset, **metadata: Any) -> None:
    """Attach ``metadata`` (rows, night, batch…) to ``asset``, which the running task
    materializes. Outside a materializing task it does nothing."""
    # Outside a materializing task (a direct call, a test) Prefect raises RuntimeError.
    with contextlib.suppress(RuntimeError):
        add_asset_metadata(asset, metadata)

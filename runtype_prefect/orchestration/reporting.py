"""The ``runtype-report`` flow: the HTML report written as a Prefect asset, downstream of
the analytics snapshot it reads (see `runtype_prefect.orchestration.lineage`)."""

# No postponed annotations here: Prefect validates a flow's parameters against them.

from prefect import flow
from prefect.assets import materialize
from prefect.cache_policies import NO_CACHE

from ..analytics import build_report
from ..analytics.report import Links
from .lineage import WAREHOUSE_ASSET, describe_materialized, report_asset, snapshot_asset


@materialize(WAREHOUSE_ASSET, name="write-report", cache_policy=NO_CACHE)
def write_report(db_path: str | None, report_path: str, links: Links | None) -> str:
    """Write the report (`build_report`) and return its path; call it through
    `report_flow` for the lineage."""
    path = build_report(db_path, report_path, links=links)
    describe_materialized(report_asset(path), bytes=path.stat().st_size, path=str(path))
    return str(path)


@flow(name="runtype-report")
def report_flow(
    db_path: str | None = None, report_path: str = "report.html", links: Links | None = None
) -> str:
    """Write the static HTML report of the warehouse's analytics snapshot to ``report_path``
    as the asset downstream of the snapshot; return its path. Raises what `build_report`
    raises (no snapshot yet, a locked file)."""
    lineage = write_report.with_options(
        assets=[report_asset(report_path)], asset_deps=[snapshot_asset(db_path)]
    )
    return lineage(db_path, report_path, links)

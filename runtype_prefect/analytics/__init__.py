"""Analytics for analysts: DataFrames from the SQL views, plotly figures, the HTML report.

Everything reads the published snapshot read-only, so an open notebook never blocks a nightly
run. Typical use::

    from runtype_prefect import analytics as rta
    con = rta.connect()                       # $RUNTYPE_PREFECT_DB or runtype.duckdb's snapshot
    rtn = rta.record_type_nights(con, rta.Filters(record_types=("lead",)))
    rta.figures.success_rate_over_time(rtn).show()
"""

from . import figures
from .colors import color_map
from .queries import (
    Filters,
    batch_runs,
    batch_timing,
    chronic_failures,
    error_class_nights,
    error_pareto,
    execution_times,
    failure_heatmap,
    failures,
    flow_versions,
    freshness,
    kpis,
    latest_night,
    model_latency,
    model_usage,
    nightly_runs,
    quality_history,
    record_costs,
    record_history,
    record_type_nights,
    segments,
    step_performance,
)
from .rendering import use_notebook_renderer
from .report import Links, build_figures, build_report
from .snapshot import AnalyticsUnavailableError, connect, resolve_analytics_path

__all__ = [
    "AnalyticsUnavailableError",
    "Filters",
    "Links",
    "batch_runs",
    "batch_timing",
    "build_figures",
    "build_report",
    "chronic_failures",
    "color_map",
    "connect",
    "error_class_nights",
    "error_pareto",
    "execution_times",
    "failure_heatmap",
    "failures",
    "figures",
    "flow_versions",
    "freshness",
    "kpis",
    "latest_night",
    "model_latency",
    "model_usage",
    "nightly_runs",
    "quality_history",
    "record_costs",
    "record_history",
    "record_type_nights",
    "resolve_analytics_path",
    "segments",
    "step_performance",
    "use_notebook_renderer",
]

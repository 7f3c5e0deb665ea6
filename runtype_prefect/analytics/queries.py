"""DataFrames from the analytics views, with filters (dates, record types, flow, model).

Every measure and aggregate is defined once in ``analytics/`` (views and table macros, one per
file); this module only selects from them and passes the analyst's filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd


@dataclass(frozen=True)
class Filters:
    """Which rows to look at: nights ``start``..``end`` (inclusive), record types, flow, model."""

    start: date | None = None
    end: date | None = None
    record_types: tuple[str, ...] | None = None
    flow_id: str | None = None
    model: str | None = None

    def where(
        self,
        *,
        night: str = "night",
        model: str | None = None,
        flow: bool = True,
        record_type: bool = True,
    ) -> tuple[str, list]:
        """Return a SQL ``WHERE`` clause (or "") and its parameters for the given columns."""
        clauses: list[str] = []
        params: list = []
        if self.start is not None:
            clauses.append(f"{night} >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{night} <= ?")
            params.append(self.end)
        if record_type and self.record_types:
            clauses.append(f"record_type IN ({', '.join('?' * len(self.record_types))})")
            params.extend(self.record_types)
        if flow and self.flow_id:
            clauses.append("flow_id = ?")
            params.append(self.flow_id)
        if model and self.model:
            clauses.append(f"{model} = ?")
            params.append(self.model)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def selection(self, *, flow: bool = True) -> list:
        """Return the selection as the parameters the table macros of ``analytics/`` take:
        first night, last night, record types (a list) and flow (None where unset)."""
        types = list(self.record_types) if self.record_types else None
        return [self.start, self.end, types, self.flow_id if flow else None]


ALL = Filters()


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def batch_runs(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return one row per batch (view ``batch_runs``), newest night first."""
    where, params = f.where()
    return _df(
        con,
        f"SELECT * FROM batch_runs{where} ORDER BY night DESC, record_type, job_name, batch_id",
        params,
    )


def batch_timing(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return per batch (job × night) how long it queued and ran (view ``batch_timing``)."""
    where, params = f.where()
    return _df(con, f"SELECT * FROM batch_timing{where} ORDER BY night, job_name, batch_id", params)


def nightly_runs(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return one row per night over all record types (view ``nightly_runs``; dates only)."""
    where, params = f.where(flow=False, record_type=False)
    return _df(con, f"SELECT * FROM nightly_runs{where} ORDER BY night", params)


def record_type_nights(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return one row per record type per night (view ``record_type_nights``)."""
    where, params = f.where(flow=False)
    return _df(con, f"SELECT * FROM record_type_nights{where} ORDER BY night, record_type", params)


def chosen_records(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return per record type what its incremental nights ran and saved (view
    ``incremental_savings``, summed over the selection's nights): nights, type_records,
    records_run, records_saved, usd_saved; empty without incremental nights."""
    where, params = f.where()
    return _df(
        con,
        "SELECT record_type, count(*) AS nights, sum(type_records) AS type_records,"
        " sum(records_run) AS records_run, sum(records_saved) AS records_saved,"
        f" sum(usd_saved) AS usd_saved FROM incremental_savings{where}"
        " GROUP BY record_type ORDER BY record_type",
        params,
    )


def repaired_nights(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return the job-nights that had repairs (view ``night_repairs``), newest first: first
    attempt and after-repair success rates, records repaired."""
    where, params = f.where()
    clause = f"{where} AND repair_attempts > 0" if where else " WHERE repair_attempts > 0"
    return _df(
        con,
        f"SELECT * FROM night_repairs{clause} ORDER BY night DESC, record_type",
        params,
    )


def execution_times(
    con: duckdb.DuckDBPyConnection, f: Filters = ALL, *, limit: int = 200_000
) -> pd.DataFrame:
    """Return per-record execution times (record_type, night, execution_time_s, success), a
    reproducible sample of at most ``limit`` rows."""
    where, params = f.where()
    where = where + (" AND " if where else " WHERE ") + "execution_time_s IS NOT NULL"
    return _df(
        con,
        f"SELECT record_type, night, execution_time_s, success FROM record_facts{where}"
        f" USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)",
        params,
    )


def step_performance(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return per flow step and record type over the whole selection (table macro
    ``step_summary``): executions, failure rate, p50/p95/p99 duration (s), retries."""
    return _df(
        con,
        "SELECT * FROM step_summary(?, ?, ?, ?)"
        " ORDER BY record_type, flow_id, step_order, step_name",
        f.selection(),
    )


def model_usage(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return tokens, cost and calls per model per night (view ``model_usage``)."""
    where, params = f.where(flow=False, record_type=False, model="model")
    return _df(con, f"SELECT * FROM model_usage{where} ORDER BY night, model", params)


def model_latency(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return per model over the selection (table macro ``model_summary``): calls, p50/p95/p99
    duration (s), tokens, estimated_cost_usd; most expensive first."""
    return _df(
        con,
        "SELECT * FROM model_summary(?, ?, ?, ?, ?) ORDER BY estimated_cost_usd DESC, model",
        [*f.selection(), f.model],
    )


def record_costs(
    con: duckdb.DuckDBPyConnection, f: Filters = ALL, *, top: int = 20
) -> pd.DataFrame:
    """Return the ``top`` most expensive records (view ``record_costs``; record type filter)."""
    where, params = f.where(night="last_night", flow=False)
    return _df(
        con,
        f"SELECT * FROM record_costs{where}"
        f" ORDER BY estimated_cost_usd DESC, record_id LIMIT {int(top)}",
        params,
    )


def failures(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return failures per error class, record type and step over the selection, most first
    (table macro ``failure_summary``): failures, records hit, nights seen, first and last seen,
    an example message."""
    return _df(
        con,
        "SELECT * FROM failure_summary(?, ?, ?, ?)"
        " ORDER BY failures DESC, error_class, record_type, step_name, step_type",
        f.selection(),
    )


def error_pareto(
    con: duckdb.DuckDBPyConnection, f: Filters = ALL, *, top: int = 12
) -> pd.DataFrame:
    """Return the ``top`` error classes by failures with their share and cumulative share
    (table macro ``error_pareto``)."""
    return _df(
        con,
        f"SELECT * FROM error_pareto(?, ?, ?, ?) ORDER BY failures DESC, error_class"
        f" LIMIT {int(top)}",
        f.selection(),
    )


def error_class_nights(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return failed steps per night, record type and error class (the `error_class_nights`
    model) over the selection."""
    where, params = f.where(flow=False)
    return _df(
        con,
        f"SELECT * FROM error_class_nights{where} ORDER BY night, record_type, error_class",
        params,
    )


def failure_heatmap(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return failure rate per record type × step over the selection (long format; table
    macro ``step_failure_rates``)."""
    return _df(
        con,
        "SELECT * FROM step_failure_rates(?, ?, ?, ?) ORDER BY record_type, step_order, step_name",
        f.selection(),
    )


def flow_versions(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return per flow version and record type over the selection (table macro
    ``flow_versions``): records, success rate with its 95 % Wilson interval, p50/p95 execution
    time, estimated cost per successful record, first and last night."""
    return _df(
        con,
        "SELECT * FROM flow_versions(?, ?, ?, ?)"
        " ORDER BY record_type, first_seen_night, flow_version_id",
        f.selection(),
    )


def chronic_failures(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return the records that failed on at least 3 of the last 5 nights they ran (view
    ``chronic_failures``; record type and flow filters), most failed nights first."""
    where, params = f.where(night="last_night")
    return _df(
        con,
        f"SELECT * FROM chronic_failures{where}"
        " ORDER BY nights_failed DESC, last_failed_night DESC, record_id, flow_id",
        params,
    )


def record_history(
    con: duckdb.DuckDBPyConnection, record_id: str, f: Filters = ALL
) -> pd.DataFrame:
    """Return one record's executions night by night (view ``record_history``)."""
    where, params = f.where()
    where = where + (" AND " if where else " WHERE ") + "record_id = ?"
    return _df(
        con, f"SELECT * FROM record_history{where} ORDER BY night, batch_id", [*params, record_id]
    )


def segments(con: duckdb.DuckDBPyConnection, field: str, f: Filters = ALL) -> pd.DataFrame:
    """Return success rate (with its Wilson interval) and p50/p95 execution time per value of
    the records' metadata field ``field`` over the selection (table macro ``segments``)."""
    return _df(
        con,
        "SELECT * FROM segments(?, ?, ?, ?, ?) ORDER BY records DESC, segment",
        [field, *f.selection()],
    )


def freshness(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Return per night what landed and when (view ``freshness``), oldest first."""
    return _df(con, "SELECT * FROM freshness ORDER BY night")


def quality_history(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return the quality gate's verdicts over the selection (view ``quality_history``):
    one row per job, night and metric, newest night first, degraded ones first within it."""
    where, params = f.where()
    return _df(
        con,
        f"SELECT * FROM quality_history{where}"
        " ORDER BY night DESC, verdict <> 'degraded', job, metric",
        params,
    )


def latest_night(con: duckdb.DuckDBPyConnection, f: Filters | None = None) -> date | None:
    """Return the most recent night with landed results (within the nights of ``f``), or None
    when there is none (table macro ``latest_night``)."""
    f = f or ALL
    return con.execute("SELECT night FROM latest_night(?, ?)", [f.start, f.end]).fetchone()[0]  # type: ignore[index]


#: metric -> (label, d3 number format, True when a lower value is better).
KPI_LABELS: dict[str, tuple[str, str, bool]] = {
    "records_per_night": ("Records per night", ",.0f", False),
    "success_rate": ("Record success rate", ".1%", False),
    "p50_s": ("p50 execution time (s)", ".2f", True),
    "p95_s": ("p95 execution time (s)", ".2f", True),
    "estimated_cost_per_night_usd": ("Estimated cost per night (USD)", "$,.2f", True),
    "billed_cost_per_night_usd": ("Billed cost per night (USD)", "$,.2f", True),
    "estimated_cost_per_success_usd": (
        "Estimated cost per successful record (USD)",
        "$,.4f",
        True,
    ),
    "retry_rate": ("Step retry rate", ".1%", True),
}


def prints_as_zero(change: float) -> bool:
    """Return True when a KPI change (a fraction, or points for rates) prints as 0.0 % in the
    KPIs' one-decimal percent format."""
    return abs(change) < 0.0005


def kpis(
    con: duckdb.DuckDBPyConnection,
    *,
    night: date | None = None,
    trailing_nights: int = 7,
    record_types: tuple[str, ...] | None = None,
    since: date | None = None,
) -> pd.DataFrame:
    """Return the KPIs of ``night`` (default: the latest) against the ``trailing_nights`` before
    it (none before ``since``: a selection starting at ``since`` compares within itself).

    Columns: metric, label, current, previous, delta, delta_pct. Counts and cost are per night;
    rates and percentiles are pooled over each period. Empty periods give NaN.
    """
    night = night or latest_night(con, Filters(start=since))
    rows = []
    if night is None:
        current = previous = {k: None for k in KPI_LABELS}
    else:
        now = Filters(start=night, end=night, record_types=record_types)
        first = night - timedelta(days=trailing_nights)
        before = Filters(
            start=max(first, since) if since else first,
            end=night - timedelta(days=1),
            record_types=record_types,
        )
        current = _kpi_row(con, now)
        previous = _kpi_row(con, before)
    for metric, (label, _, _) in KPI_LABELS.items():
        cur, prev = current[metric], previous[metric]
        delta = cur - prev if cur is not None and prev is not None else None
        pct = delta / prev if delta is not None and prev else None
        rows.append(
            {
                "metric": metric,
                "label": label,
                "current": cur,
                "previous": prev,
                "delta": delta,
                "delta_pct": pct,
            }
        )
    return pd.DataFrame(rows).astype(
        {c: "float64" for c in ("current", "previous", "delta", "delta_pct")}
    )


def _kpi_row(con: duckdb.DuckDBPyConnection, f: Filters) -> dict:
    """Return the row of the ``period_kpis`` model for the nights and record types of ``f``."""
    cur = con.execute("SELECT * FROM period_kpis(?, ?, ?)", f.selection()[:3])
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))  # type: ignore[arg-type]

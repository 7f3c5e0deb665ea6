"""DataFrames from the analytics views, with filters (dates, record types, flow, model).

Every aggregate, percentiles included, is computed in SQL by DuckDB; Python only passes filters.
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


ALL = Filters()


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def batch_runs(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return one row per batch (view ``batch_runs``), newest night first."""
    where, params = f.where()
    return _df(con, f"SELECT * FROM batch_runs{where} ORDER BY night DESC, record_type", params)


def nightly_runs(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return one row per night over all record types (view ``nightly_runs``; dates only)."""
    where, params = f.where(flow=False, record_type=False)
    return _df(con, f"SELECT * FROM nightly_runs{where} ORDER BY night", params)


def record_type_nights(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return one row per record type per night (view ``record_type_nights``)."""
    where, params = f.where(flow=False)
    return _df(con, f"SELECT * FROM record_type_nights{where} ORDER BY night, record_type", params)


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
    """Return per flow step and record type over the whole selection: executions, failure rate,
    p50/p95/p99 duration (s), retries."""
    where, params = f.where()
    return _df(
        con,
        f"""
        SELECT record_type, flow_id, step_order, step_name, step_type,
               count(*) AS executions,
               count(*) FILTER (WHERE NOT succeeded) AS failures,
               count(*) FILTER (WHERE NOT succeeded) / count(*) AS failure_rate,
               quantile_cont(duration_s, 0.50) AS p50_s,
               quantile_cont(duration_s, 0.95) AS p95_s,
               quantile_cont(duration_s, 0.99) AS p99_s,
               sum(retry_count) AS retries
        FROM step_facts{where}
        GROUP BY ALL ORDER BY record_type, step_order
        """,
        params,
    )


def model_usage(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return tokens, cost and calls per model per night (view ``model_usage``)."""
    where, params = f.where(flow=False, record_type=False, model="model")
    return _df(con, f"SELECT * FROM model_usage{where} ORDER BY night, model", params)


def model_latency(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return per model over the selection: calls, p50/p95/p99 duration (s), tokens, cost."""
    where, params = f.where(model="model_used")
    where = where + (" AND " if where else " WHERE ") + "model_used IS NOT NULL"
    return _df(
        con,
        f"""
        SELECT model_used AS model, count(*) AS calls,
               quantile_cont(duration_s, 0.50) AS p50_s,
               quantile_cont(duration_s, 0.95) AS p95_s,
               quantile_cont(duration_s, 0.99) AS p99_s,
               coalesce(sum(total_tokens), 0) AS tokens,
               CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS cost_usd
        FROM step_facts{where}
        GROUP BY ALL ORDER BY cost_usd DESC
        """,
        params,
    )


def record_costs(
    con: duckdb.DuckDBPyConnection, f: Filters = ALL, *, top: int = 20
) -> pd.DataFrame:
    """Return the ``top`` most expensive records (view ``record_costs``; record type filter)."""
    where, params = f.where(night="last_night", flow=False)
    return _df(
        con, f"SELECT * FROM record_costs{where} ORDER BY cost_usd DESC LIMIT {int(top)}", params
    )


def failures(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Return failures per error class, record type and step over the selection, most first:
    failures, records hit, nights seen, first and last seen, an example message."""
    where, params = f.where()
    return _df(
        con,
        f"""
        SELECT error_class, record_type, step_name, step_type,
               CAST(sum(failures) AS BIGINT) AS failures,
               CAST(sum(records) AS BIGINT) AS records, count(DISTINCT night) AS nights,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen,
               any_value(example) AS example
        FROM failures{where}
        GROUP BY ALL ORDER BY failures DESC, error_class
        """,
        params,
    )


def error_pareto(
    con: duckdb.DuckDBPyConnection, f: Filters = ALL, *, top: int = 12
) -> pd.DataFrame:
    """Return the ``top`` error classes by failures with their share and cumulative share."""
    where, params = f.where()
    return _df(
        con,
        f"""
        WITH classes AS (
            SELECT error_class, CAST(sum(failures) AS BIGINT) AS failures
            FROM failures{where} GROUP BY ALL
        )
        SELECT error_class, failures,
               failures / sum(failures) OVER () AS share,
               sum(failures) OVER (ORDER BY failures DESC, error_class)
                   / sum(failures) OVER () AS cumulative_share
        FROM classes ORDER BY failures DESC, error_class LIMIT {int(top)}
        """,
        params,
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
    """Return failure rate per record type × step over the selection (long format)."""
    where, params = f.where()
    return _df(
        con,
        f"""
        SELECT record_type, step_order, step_name, CAST(sum(executions) AS BIGINT) AS executions,
               CAST(sum(failures) AS BIGINT) AS failures,
               sum(failures) / sum(executions) AS failure_rate
        FROM step_performance{where}
        GROUP BY ALL ORDER BY record_type, step_order
        """,
        params,
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
    when there is none."""
    where, params = (f or ALL).where(record_type=False, flow=False)
    return con.execute(f"SELECT max(night) FROM record_facts{where}", params).fetchone()[0]  # type: ignore[index]


KPI_SQL = """
WITH records AS (
    SELECT
        count(*) / count(DISTINCT night) AS records_per_night,
        count(*) FILTER (WHERE success) / count(*) AS success_rate,
        quantile_cont(execution_time_s, 0.50) AS p50_s,
        quantile_cont(execution_time_s, 0.95) AS p95_s,
        count(*) FILTER (WHERE success) AS succeeded,
        count(DISTINCT night) AS nights
    FROM record_facts{where}
),
steps AS (
    SELECT
        CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS cost,
        count(*) FILTER (WHERE retry_count > 0) / nullif(count(*), 0) AS retry_rate
    FROM step_facts{where}
)
SELECT records_per_night, success_rate, p50_s, p95_s,
       cost / nullif(nights, 0) AS cost_per_night,
       cost / nullif(succeeded, 0) AS cost_per_success,
       retry_rate
FROM records, steps
"""

#: metric -> (label, d3 number format, True when a lower value is better).
KPI_LABELS: dict[str, tuple[str, str, bool]] = {
    "records_per_night": ("Records per night", ",.0f", False),
    "success_rate": ("Record success rate", ".1%", False),
    "p50_s": ("p50 execution time (s)", ".2f", True),
    "p95_s": ("p95 execution time (s)", ".2f", True),
    "cost_per_night": ("Cost per night (USD)", "$,.2f", True),
    "cost_per_success": ("Cost per successful record (USD)", "$,.4f", True),
    "retry_rate": ("Step retry rate", ".1%", True),
}


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
    where, params = f.where(flow=False)
    cur = con.execute(KPI_SQL.format(where=where), params + params)
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))  # type: ignore[arg-type]

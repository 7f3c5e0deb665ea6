"""Analytics views, queries, figures and the report on small hand-built warehouses."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from helpers import report_payload

from runtype_prefect import analytics as rta
from runtype_prefect.analytics import figures
from runtype_prefect.analytics.colors import FAILED, color_map
from runtype_prefect.analytics.report import build_figures
from runtype_prefect.gate import judge_nights
from runtype_prefect.warehouse import Warehouse

BATCHES = [
    # batch_id, run_key (night), record_type, outcome, total_cost_usd
    ("b1", "2026-11-01", "alpha", "completed", 1.0),
    ("b2", "2026-11-02", "alpha", "completed_with_failures", 2.0),
    ("b3", "2026-11-02", "beta", "completed_with_failures", 0.5),
    ("b4", "2026-11-02", "empty", "no_records", 0.0),
]
RECORDS = [
    # batch_id, record_id, record_type, success, execution_time_s
    ("b1", "r1", "alpha", True, 1.0),
    ("b1", "r2", "alpha", True, 2.0),
    ("b1", "r3", "alpha", True, 3.0),
    ("b1", "r4", "alpha", True, 4.0),
    ("b2", "r1", "alpha", True, 10.0),
    ("b2", "r2", "alpha", False, 20.0),
    ("b3", "r5", "beta", False, 5.0),
    ("b3", "r6", "beta", False, 7.0),
]
STEPS = [
    # id, batch, record, record_type, order, name, type, status, ms, model, tokens, cost,
    # error, retries
    (
        "s1",
        "b1",
        "r1",
        "alpha",
        1,
        "Fetch",
        "api-call",
        "completed",
        200,
        None,
        None,
        None,
        None,
        0,
    ),
    (
        "s2",
        "b1",
        "r1",
        "alpha",
        2,
        "Think",
        "prompt",
        "completed",
        1800,
        "gpt-4o",
        900,
        "0.0100",
        None,
        1,
    ),
    (
        "s3",
        "b2",
        "r2",
        "alpha",
        1,
        "Fetch",
        "api-call",
        "failed",
        400,
        None,
        None,
        None,
        "HTTP 502 Bad Gateway from https://api.crm.example/v2/accounts/record_0123456789ab",
        0,
    ),
    (
        "s4",
        "b3",
        "r5",
        "beta",
        1,
        "Fetch",
        "api-call",
        "failed",
        300,
        None,
        None,
        None,
        "HTTP 502 Bad Gateway from https://api.crm.example/v2/accounts/record_zyxwvutsrqpo",
        0,
    ),
    (
        "s5",
        "b3",
        "r6",
        "beta",
        1,
        "Fetch",
        "api-call",
        "failed",
        30000,
        None,
        None,
        None,
        "Connection timed out after 30000 ms",
        2,
    ),
    (
        "s6",
        "b2",
        "r1",
        "alpha",
        2,
        "Think",
        "prompt",
        "completed",
        2200,
        "gpt-4o-mini",
        500,
        "0.0005",
        None,
        0,
    ),
]


def build(path) -> str:
    with Warehouse(path) as w, w.transaction() as cur:
        for batch_id, night, rtype, outcome, cost in BATCHES:
            cur.execute(
                "INSERT INTO batches (batch_id, flow_id, record_type, run_key, status, outcome,"
                " total_cost_usd, landed_at, requested_at, started_at, completed_at)"
                " VALUES (?, 'flow_1', ?, ?, 'completed', ?, ?, ?, ?, ?, ?)",
                [
                    batch_id,
                    rtype,
                    night,
                    outcome,
                    cost,
                    f"{night} 03:00:00+00",
                    f"{night} 02:00:00+00",
                    f"{night} 02:00:30+00",
                    f"{night} 02:10:30+00",
                ],
            )
        for batch_id, record_id, rtype, success, seconds in RECORDS:
            cur.execute(
                "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
                " success, execution_time_s, landed_at) VALUES (?, ?, ?, 'flow_1', ?, ?, ?, now())",
                [
                    batch_id,
                    record_id,
                    rtype,
                    "completed" if success else "failed",
                    success,
                    seconds,
                ],
            )
        for step in STEPS:  # tuple order = the column order below
            cur.execute(
                "INSERT INTO step_results (id, batch_execution_id, flow_id, record_id, record_type,"
                " step_order, step_name, step_type, status, duration_ms, model_used, total_tokens,"
                " estimated_cost, error_message, retry_count, completed_at, landed_at)"
                " VALUES (?, ?, 'flow_1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now())",
                list(step),
            )
        cur.execute("UPDATE step_results SET flow_version_id = 'ver_1'")
    with Warehouse(path) as w:
        judge_nights(w, max(date.fromisoformat(b[1]) for b in BATCHES))  # the gate's history
        w.publish_snapshot(full=True)  # the rows above were written around the landing
    return str(path)


@pytest.fixture
def con(tmp_path):
    with rta.connect(build(tmp_path / "known.duckdb")) as connection:
        yield connection


@pytest.fixture
def empty_con(tmp_path):
    with Warehouse(tmp_path / "empty.duckdb") as w:
        w.publish_snapshot()
    with rta.connect(tmp_path / "empty.duckdb") as connection:
        yield connection


def row(df: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for column, value in where.items():
        mask &= df[column] == value
    (index,) = df.index[mask]
    return df.loc[index]


def test_record_type_nights_exact_rates_and_percentiles(con):
    rtn = rta.record_type_nights(con)
    first = row(rtn, record_type="alpha", night=pd.Timestamp("2026-11-01"))
    assert (first.records, first.succeeded, first.success_rate) == (4, 4, 1.0)
    assert first.p50_s == pytest.approx(2.5)
    assert first.p95_s == pytest.approx(3.85)  # quantile_cont over 1, 2, 3, 4
    assert first.p99_s == pytest.approx(3.97)
    assert first.max_s == 4.0
    second = row(rtn, record_type="alpha", night=pd.Timestamp("2026-11-02"))
    assert second.success_rate == 0.5
    assert second.estimated_cost_per_success_usd == pytest.approx(0.0005)
    assert second.estimated_cost_usd == pytest.approx(0.0005)  # the steps' estimates
    assert second.billed_cost_usd == pytest.approx(2.0)  # the API's batch cost
    only_failures = row(rtn, record_type="beta")
    assert only_failures.success_rate == 0.0
    assert pd.isna(only_failures.estimated_cost_per_success_usd)


def test_batches_nights_and_a_record_type_with_zero_records(con):
    batches = rta.batch_runs(con)
    empty = row(batches, batch_id="b4")
    assert empty.records == 0 and pd.isna(empty.success_rate) and empty.outcome == "no_records"
    nights = rta.nightly_runs(con).set_index("night")
    assert nights.loc[pd.Timestamp("2026-11-02"), "records"] == 4
    assert nights.loc[pd.Timestamp("2026-11-02"), "succeeded"] == 1
    assert nights.loc[pd.Timestamp("2026-11-02"), "billed_cost_usd"] == pytest.approx(2.5)
    assert nights.loc[pd.Timestamp("2026-11-02"), "estimated_cost_usd"] == pytest.approx(0.0005)


def test_error_classes_group_messages_of_one_kind(con):
    pareto = rta.error_pareto(con)
    assert list(pareto["error_class"]) == [
        "HTTP 502 Bad Gateway from api.crm.example",
        "Connection timed out after <n> ms",
    ]
    assert list(pareto["failures"]) == [2, 1]
    assert list(pareto["cumulative_share"]) == pytest.approx([2 / 3, 1.0])
    failures = rta.failures(con)
    assert set(failures["record_type"]) == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "HTTP 404 Not Found from https://h.example/x/record_01abcdefghjk",
            "HTTP 404 Not Found from h.example",
        ),
        ("Script exceeded 5000 ms time limit", "Script exceeded <n> ms time limit"),
        (
            "TypeError: Cannot read properties of undefined (reading 'score')",
            "TypeError: Cannot read properties of undefined (reading 'score')",
        ),
        ("", None),
    ],
)
def test_error_class_macro(con, message, expected):
    assert con.execute("SELECT error_class(?)", [message]).fetchone()[0] == expected


def test_steps_models_and_filters(con):
    steps = rta.step_performance(con, rta.Filters(record_types=("alpha",)))
    fetch = row(steps, step_name="Fetch")
    assert (fetch.executions, fetch.failures, fetch.failure_rate) == (2, 1, 0.5)
    assert fetch.p50_s == pytest.approx(0.3)
    models = rta.model_latency(con).set_index("model")
    assert models.loc["gpt-4o", "tokens"] == 900
    assert models.loc["gpt-4o", "estimated_cost_usd"] == 0.01
    later = rta.record_type_nights(con, rta.Filters(start=date(2026, 11, 2)))
    assert set(later["night"].dt.date) == {date(2026, 11, 2)}
    heat = rta.failure_heatmap(con)
    assert row(heat, record_type="beta").failure_rate == 1.0


def test_kpis_compare_the_night_with_the_trailing_week(con):
    k = rta.kpis(con).set_index("metric")
    assert k.loc["success_rate", "current"] == pytest.approx(0.25)
    assert k.loc["success_rate", "previous"] == pytest.approx(1.0)
    assert k.loc["success_rate", "delta"] == pytest.approx(-0.75)
    assert (
        k.loc["records_per_night", "current"] == 4 and k.loc["records_per_night", "previous"] == 4
    )
    assert rta.latest_night(con) == date(2026, 11, 2)


def test_every_query_works_on_an_empty_warehouse(empty_con):
    for query in (
        rta.batch_runs,
        rta.nightly_runs,
        rta.record_type_nights,
        rta.execution_times,
        rta.step_performance,
        rta.model_usage,
        rta.model_latency,
        rta.record_costs,
        rta.failures,
        rta.error_pareto,
        rta.failure_heatmap,
    ):
        assert query(empty_con).empty, query.__name__
    assert rta.kpis(empty_con)["current"].isna().all()
    assert rta.latest_night(empty_con) is None


@pytest.mark.parametrize("which", ["empty", "known"])
def test_every_figure_builder(which, con, empty_con):
    figs = build_figures(empty_con if which == "empty" else con)
    assert set(figs) == set(figures.BUILDERS)
    for name, fig in figs.items():
        assert isinstance(fig, go.Figure), name
        assert fig.layout.title.text, f"{name} has no title"
        no_data = any("No data" in (a.text or "") for a in fig.layout.annotations)
        if which == "empty":
            assert no_data, f"{name} should say it has no data"
        else:
            assert fig.data and not no_data, f"{name} should have traces"


def test_colours_are_stable_across_charts():
    both = color_map(["lead", "ticket", "customer"])
    assert color_map(["customer", "ticket", "lead"]) == both
    assert len(set(both.values())) == 3
    rtn = pd.DataFrame(
        {
            "record_type": ["ticket", "lead"],
            "night": pd.to_datetime(["2026-11-01"] * 2),
            "records": [30, 5],
            "failed": [1, 0],
            "success_rate": [0.9, 1.0],
        }
    )
    fig = figures.success_rate_over_time(rtn)
    colours = {t.name: t.line.color for t in fig.data}
    assert colours == {k: v for k, v in color_map(["ticket", "lead"]).items()}


def test_report_is_one_offline_file_with_every_chart(con, tmp_path):
    db = build(tmp_path / "report.duckdb")
    out = rta.build_report(db, tmp_path / "out" / "report.html")
    page = out.read_text()
    plotlyjs, payload = report_payload(page)
    for name in figures.BUILDERS:
        assert f'id="chart-{name}"' in page, name
        figure = payload["figures"][f"chart-{name}"]  # a figure for every chart element
        assert "data" in figure and "layout" in figure
    assert not re.search(r"<script[^>]+src=", page), "no external scripts: it must open offline"
    assert len(plotlyjs) > 1_000_000 and "Plotly" in plotlyjs, "plotly.js must be inlined"
    assert "Plotly.newPlot" in page  # the page script draws them
    # One theme for the page, not one per chart.
    assert len(payload["templates"]) == 1
    assert all(f["template"] == 0 for f in payload["figures"].values())
    assert "Top failures" in page and "api.crm.example" in page
    assert str(tmp_path / "report.analytics.duckdb") in page


def test_report_without_a_snapshot_names_the_problem(tmp_path):
    with pytest.raises(rta.AnalyticsUnavailableError, match="run the nightly flow"):
        rta.build_report(tmp_path / "missing.duckdb", tmp_path / "r.html")


def test_the_report_shows_the_quality_gates_verdicts(tmp_path):
    from runtype_prefect.gate import judge_nights
    from runtype_prefect.warehouse import Warehouse

    db = build(tmp_path / "gate.duckdb")
    with Warehouse(db) as w:
        (last,) = w.query("SELECT max(night) FROM job_nights")[0]
        verdicts = judge_nights(w, last)
        w.publish_snapshot()
    page = rta.build_report(db, tmp_path / "r.html").read_text()
    assert re.search(r'<h2 id="section-\d+">Quality gate</h2>', page)
    assert f"<p>Night {last}:</p>" in page
    with rta.connect(db) as con:
        history = rta.quality_history(con)
    assert len(history[history["night"] == pd.Timestamp(last)]) == len(verdicts) > 0
    assert set(history["verdict"]) <= {"ok", "degraded", "no_verdict"}


def test_the_pareto_keeps_classes_that_share_a_long_prefix_apart():
    """Classes alike in their first 45 characters are different bars (the axis shortens only
    the label): grouping on the label merged three TypeErrors into one bar."""
    prefix = "TypeError: cannot read properties of undefined (reading "
    pareto = pd.DataFrame(
        {
            "error_class": [prefix + "'a')", prefix + "'b')", "HTTP 502 from api", prefix + "'c')"],
            "failures": [10, 8, 7, 5],
            "share": [10 / 30, 8 / 30, 7 / 30, 5 / 30],
            "cumulative_share": [10 / 30, 18 / 30, 25 / 30, 1.0],
        }
    )
    fig = figures.error_pareto(pareto)
    bars = fig.data[0]
    assert list(bars.x) == list(pareto["error_class"]) and list(bars.y) == [10, 8, 7, 5]
    assert all(len(t) <= 48 for t in fig.layout.xaxis.ticktext)
    assert list(fig.layout.xaxis.tickvals) == list(pareto["error_class"])
    # ... and their labels can be told apart: a long class keeps its end, where they differ.
    labels = list(fig.layout.xaxis.ticktext)
    assert len(set(labels)) == len(labels) and labels[0].endswith("(reading 'a')")
    # The cumulative axis reads in quarters, not in the left axis's steps (0/24/47/71/95 %).
    assert list(fig.layout.yaxis2.tickvals) == [0, 0.25, 0.5, 0.75, 1]


def test_short_labels_stay_apart_even_when_start_and_end_are_alike():
    alike = ["x" * 30 + str(i) + "y" * 30 for i in range(3)]
    labels = figures.short_labels(alike)
    assert len(set(labels)) == 3 and all(len(label) <= 48 for label in labels)
    assert figures.short_labels(["short"]) == ["short"]


@pytest.mark.parametrize("highest", [0.0, 0.003, 0.012, 0.047, 0.05, 0.3, 1.0])
def test_the_heatmaps_colour_bar_reads_each_tick_once(highest):
    """plotly's own ticks at a 0–5 % scale printed 5%, 4%, 4%, 3%, 3%…: each tick now says a
    different rate, and the scale covers the highest one."""
    heat = pd.DataFrame(
        {
            "record_type": ["lead", "lead"],
            "step_order": [1, 2],
            "step_name": ["a", "b"],
            "failure_rate": [0.0, highest],
            "failures": [0, 1],
            "executions": [10, 10],
        }
    )
    bar = figures.failure_heatmap(heat).layout.coloraxis
    labels = list(bar.colorbar.ticktext)
    assert len(set(labels)) == len(labels) >= 3 and labels[0].startswith("0")
    assert bar.cmax >= highest and list(bar.colorbar.tickvals)[-1] == bar.cmax


def test_a_kpi_change_that_prints_as_zero_is_neither_red_nor_green():
    kpis = pd.DataFrame(
        {
            "metric": ["p50_s", "p95_s"],
            "label": ["p50", "p95"],
            "current": [7.9801, 9.0],
            "previous": [7.9800, 7.0],
        }
    )
    unchanged, slower = figures.kpi_figure(kpis).data
    assert unchanged.delta.increasing.color == unchanged.delta.decreasing.color
    assert slower.delta.increasing.color == FAILED  # slower is worse: red


def test_counts_are_integers_in_frames_and_in_the_report(con, tmp_path):
    failures = rta.failures(con)
    assert str(failures["failures"].dtype) == "int64" and str(failures["records"].dtype) == "int64"
    assert str(rta.error_pareto(con)["failures"].dtype) == "int64"
    for frame in (rta.batch_runs(con), rta.nightly_runs(con), rta.record_type_nights(con)):
        assert {str(frame[c].dtype) for c in ("records", "succeeded", "failed")} == {"int64"}
    assert str(rta.step_performance(con)["failures"].dtype) == "int64"
    html_text = rta.build_report(build(tmp_path / "counts.duckdb"), tmp_path / "r.html").read_text()
    table = html_text[html_text.index("<th>error class</th>") :]
    table = table[: table.index("</table>")]
    assert not re.search(r"<td>\d+\.0</td>", table)


def test_the_kpis_name_their_night_and_follow_the_selection(con, tmp_path):
    nights = sorted(rta.record_type_nights(con)["night"].dt.date.unique())
    first, last = nights[0], nights[-1]
    # --since the last night: nothing earlier in the selection to compare with.
    only_last = rta.kpis(con, since=last)
    assert only_last["previous"].isna().all() and not only_last["current"].isna().all()
    assert rta.kpis(con)["previous"].notna().any()  # the whole history does compare
    db = build(tmp_path / "sel.duckdb")

    def kpi_header(page: str) -> str:
        return report_payload(page)[1]["figures"]["chart-kpis"]["layout"]["title"]["text"]

    page = rta.build_report(db, tmp_path / "r.html", since=last).read_text()
    assert kpi_header(page).startswith(f"Night {last} (no earlier night in this selection")
    # The whole history: compared with the nights before it that have data (the trailing
    # week would start six days before the first night).
    page = rta.build_report(db, tmp_path / "all.html").read_text()
    assert kpi_header(page) == f"Night {last} vs the nights {first} – {first}"
    # --until an earlier night: the KPIs describe that night, the header names the range.
    page = rta.build_report(db, tmp_path / "r2.html", since=first, until=first).read_text()
    assert kpi_header(page).startswith(f"Night {first}") and f"nights {first} – {first}" in page
    assert f"Night {last}" not in page


def test_the_report_command_takes_since_and_until(tmp_path):
    from typer.testing import CliRunner

    from runtype_prefect.cli.app import app

    db = build(tmp_path / "cli.duckdb")
    out = tmp_path / "r.html"
    done = CliRunner().invoke(
        app,
        ["report", "--db", db, "--out", str(out), "--since", "2026-01-01", "--until", "2026-12-31"],
    )
    assert done.exit_code == 0, done.output
    assert "nights 2026-01-01 – 2026-12-31" in out.read_text()


def test_percentiles_are_small_multiples_with_a_legend_of_three(con):
    rtn = rta.record_type_nights(con)
    fig = figures.latency_percentiles_over_time(rtn)
    types = sorted(rtn["record_type"].astype(str).unique())
    assert [a.text for a in fig.layout.annotations] == types  # one titled panel per type
    assert sorted(t.name for t in fig.data if t.showlegend) == ["p50", "p95", "p99"]


def test_the_heatmap_gives_each_record_type_its_own_steps(con):
    heat = rta.failure_heatmap(con)
    fig = figures.failure_heatmap(heat)
    assert len(fig.data) == heat["record_type"].nunique()
    for trace in fig.data:
        own = heat[heat["record_type"] == trace.y[0]]
        assert len(trace.x) == len(own)  # no other flow's steps, so no empty cells
    # 0 % is coloured, and different from the grey behind steps without executions
    assert fig.layout.coloraxis.colorscale[0][1] != fig.layout.plot_bgcolor


def test_error_classes_over_time_add_up_to_the_failures(con):
    nights = rta.error_class_nights(con)
    failures = rta.failures(con)
    assert int(nights["failures"].sum()) == int(failures["failures"].sum())
    assert str(nights["failures"].dtype) == "int64"
    fig = figures.error_classes_over_time(nights, top=1)
    # the largest class by name, everything else folded into "other classes"
    names = [t.name for t in fig.data]
    top = nights.groupby("error_class")["failures"].sum().sort_values(ascending=False).index[0]
    assert names[0] == top[:45] + ("…" if len(top) > 48 else top[45:])
    assert sum(sum(t.y) for t in fig.data) == int(nights["failures"].sum())
    if nights["error_class"].nunique() > 1:
        assert names[-1] == "other classes"


def test_a_snapshot_published_by_an_older_version_reads_through_todays_models(tmp_path):
    import duckdb

    from runtype_prefect.warehouse import snapshot_path_for

    db = build(tmp_path / "old.duckdb")
    snapshot = snapshot_path_for(Path(db))
    with duckdb.connect(str(snapshot)) as old:  # what an older release published
        old.execute("CREATE OR REPLACE VIEW batch_runs AS SELECT 1.0 AS cost_usd")
        old.execute("UPDATE analytics_models SET digest = 'an older release'")
        # Before runs over chosen records: a ledger without parts, no kept choices.
        old.execute("CREATE TABLE ledger AS SELECT * EXCLUDE (part) FROM run_intents")
        old.execute("DROP TABLE run_intents")
        old.execute("ALTER TABLE ledger RENAME TO run_intents")
        old.execute("DROP TABLE run_selections")
    with rta.connect(db) as con:
        batches = rta.batch_runs(con)
        assert {"estimated_cost_usd", "billed_cost_usd"} <= set(batches.columns)
        assert len(batches) == len(BATCHES)
        assert len(rta.record_type_nights(con)) > 0
        assert con.execute("SELECT count(*) FROM incremental_savings").fetchone() == (0,)
    with duckdb.connect(str(snapshot), read_only=True) as raw:
        assert raw.execute("SELECT * FROM batch_runs").fetchall() == [(1.0,)], "left as it was"


def test_wilson_intervals_on_the_success_trend(con):
    rtn = rta.record_type_nights(con)
    full = row(rtn, record_type="alpha", night=pd.Timestamp("2026-11-01"))  # 4 of 4
    assert full.success_rate_low == pytest.approx(0.5101, abs=1e-4)
    assert full.success_rate_high == 1.0
    none = row(rtn, record_type="beta")  # 0 of 2: the interval still says little is known
    assert none.success_rate_low == 0.0
    assert none.success_rate_high == pytest.approx(0.6576, abs=1e-4)
    bars = figures.success_rate_over_time(rtn).data[0].error_y
    assert bars.arrayminus is not None and bars.array is not None


def test_flow_versions_compare_success_latency_and_cost(tmp_path):
    db = build(tmp_path / "versions.duckdb")
    with Warehouse(db) as w:
        w.query(
            "UPDATE step_results SET flow_version_id ="
            " CASE WHEN batch_execution_id = 'b1' THEN 'ver_1' ELSE 'ver_2' END"
        )
        w.publish_snapshot(full=True)
    with rta.connect(db) as con:
        versions = rta.flow_versions(con)
        later = rta.flow_versions(con, rta.Filters(start=date(2026, 11, 2)))
    first = row(versions, record_type="alpha", flow_version_id="ver_1")
    assert (first.records, first.succeeded, first.success_rate) == (1, 1, 1.0)
    assert first.estimated_cost_usd == pytest.approx(0.01)
    second = row(versions, record_type="alpha", flow_version_id="ver_2")
    assert (second.records, second.success_rate) == (2, 0.5)  # only records whose steps landed
    assert second.p50_s == pytest.approx(15.0)  # execution times 10 and 20 s
    assert second.estimated_cost_per_success_usd == pytest.approx(0.0005)
    assert second.success_rate_low < 0.5 < second.success_rate_high
    beta = row(versions, record_type="beta")
    assert beta.success_rate == 0.0 and pd.isna(beta.estimated_cost_per_success_usd)
    assert set(later["flow_version_id"]) == {"ver_2"}, "the selection applies"
    assert len(figures.flow_version_comparison(versions).data) == 2  # one trace a record type


def test_cost_and_tokens_per_step(con):
    steps = rta.step_performance(con, rta.Filters(record_types=("alpha",)))
    assert steps["estimated_cost_usd"].sum() == pytest.approx(0.0105)
    assert steps["tokens"].sum() == 1400
    costly = figures.cost_per_step(steps)
    assert sum(len(t.x) for t in costly.data) == (steps["estimated_cost_usd"] > 0).sum()
    usage = rta.model_usage(con)
    lines = figures.model_latency_over_time(usage).data
    assert len(lines) == 2 * usage["model"].nunique()  # p95 and p50 per model


def test_queue_wait_and_wall_time_per_job(con):
    timing = rta.batch_timing(con).set_index("batch_id")
    assert timing.loc["b1", "queue_wait_s"] == 30.0  # requested 02:00:00, started 02:00:30
    assert timing.loc["b1", "wall_s"] == 600.0
    assert str(timing.loc["b2", "night"].date()) == "2026-11-02"
    fig = figures.batch_timing_over_time(rta.batch_timing(con))
    assert {t.line.dash for t in fig.data} == {"solid", "dot"}


def test_the_report_can_be_steered_by_record_type_and_links_last_nights_batches(tmp_path):
    db = build(tmp_path / "steer.duckdb")
    with Warehouse(db) as w:
        w.query("UPDATE batches SET prefect_flow_run_id = 'run-b2' WHERE batch_id = 'b2'")
        w.publish_snapshot(full=True)
    links = rta.Links(
        prefect_ui_url="http://127.0.0.1:4200/",
        batch_url_template="https://runtype.example/{flow_id}/batches/{batch_id}",
    )
    page = rta.build_report(db, tmp_path / "r.html", links=links).read_text()
    # One selector; the whole page once per selection, the first shown, the others hidden.
    assert page.count('<select id="selection"') == 1
    options = re.findall(r'<option value="([^"]+)">', page)
    assert options == ["all", "alpha", "beta"]  # record types with records, after "all"
    assert page.count('class="selection"') == 3 and page.count('style="display:none"') == 2
    for name in figures.BUILDERS:
        assert f'id="chart-alpha-{name}"' in page and f'id="chart-beta-{name}"' in page
    # Each section says which nights (and which record types) it covers.
    assert "Every record type, nights 2026-11-01 – 2026-11-02" in page
    assert "beta, nights 2026-11-02 – 2026-11-02" in page
    # Last night's batches link to their page and, when known, to their Prefect flow run.
    assert 'href="https://runtype.example/flow_1/batches/b2"' in page
    assert 'href="http://127.0.0.1:4200/runs/flow-run/run-b2"' in page
    assert 'href="https://runtype.example/flow_1/batches/b1"' not in page, "b1 ran the night before"
    single = rta.build_report(db, tmp_path / "one.html", by_record_type=False).read_text()
    assert "<select" not in single and "flow-run" not in single


def test_the_report_command_links_to_the_prefect_ui_from_the_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from runtype_prefect.cli.app import app

    db = build(tmp_path / "cli-links.duckdb")
    with Warehouse(db) as w:
        w.query("UPDATE batches SET prefect_flow_run_id = 'run-b3' WHERE batch_id = 'b3'")
        w.publish_snapshot(full=True)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4321/api")
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    monkeypatch.delenv("RUNTYPE_DASHBOARD_URL_TEMPLATE", raising=False)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--db", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert 'href="http://127.0.0.1:4321/runs/flow-run/run-b3"' in page
    assert 'href="https://dashboard.runtype.com/flows/flow_1"' in page  # the spec's page


def test_tables_with_ties_come_out_in_one_order(tmp_path):
    # Rows that tie on the sort key came out in hash order, so two builds of the report over
    # one warehouse could differ. Twelve tied steps in shuffled order: sorted only by a tiebreak.
    names = [f"step_{i:02d}" for i in (7, 2, 11, 0, 5, 9, 3, 10, 1, 8, 4, 6)]
    path = tmp_path / "ties.duckdb"
    with Warehouse(path) as w, w.transaction() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, flow_id, record_type, run_key, status, outcome,"
            " landed_at, requested_at) VALUES ('b1', 'flow_1', 'alpha', '2026-11-01',"
            " 'completed', 'completed_with_failures', now(), '2026-11-01 02:00:00+00')"
        )
        for i, name in enumerate(names):
            cur.execute(
                "INSERT INTO step_results (id, batch_execution_id, flow_id, record_id,"
                " record_type, step_order, step_name, step_type, status, duration_ms,"
                " estimated_cost, error_message, retry_count, completed_at, landed_at)"
                " VALUES (?, 'b1', 'flow_1', ?, 'alpha', 1, ?, 'prompt', 'failed', 100,"
                " '0.001', 'Connection timed out after 30000 ms', 0, now(), now())",
                [f"s{i}", f"r{names[-1 - i][-2:]}", name],
            )
    with Warehouse(path) as w:
        w.publish_snapshot(full=True)
    with rta.connect(path) as con:
        assert rta.failures(con)["step_name"].tolist() == sorted(names)
        costs = rta.record_costs(con, top=8)["record_id"].tolist()
        assert costs == sorted(f"r{n[-2:]}" for n in names)[:8]


def test_the_report_opens_with_what_needs_attention_and_a_table_of_contents(tmp_path):
    db = build(tmp_path / "open.duckdb")
    page = rta.build_report(db, tmp_path / "r.html").read_text()
    for part in page.split('<div class="selection"')[1:]:
        # What needs attention comes first, then the contents, then the first chart.
        attention = part.index('<section class="attention">')
        toc = part.index('<nav class="toc">')
        assert attention < toc < part.index('class="chart')
        anchors = re.findall(r'<a href="#([^"]+)">', part[toc:])
        assert len(anchors) >= 10
        assert all(f'id="{anchor}"' in part for anchor in anchors), anchors
    assert "Night 2026-11-02: records" in page
    # No column without a header or without a value: the gate's "degraded" column appears only
    # with a degraded verdict, the Prefect run column only when a Prefect UI is known.
    assert "<th></th>" not in page and "<th>Prefect run</th>" not in page


def test_what_needs_attention_puts_failures_first_and_stays_quiet_on_a_good_night():
    from runtype_prefect.analytics.attention import what_needs_attention

    night = date(2026, 12, 6)
    batches = pd.DataFrame(
        {
            "job_name": ["Lead Enrichment", "Ticket Triage"],
            "record_type": ["lead", "ticket"],
            "outcome": ["completed_with_failures", "below_floor"],
            "status": ["completed", "completed"],
            "records": [1200, 250],
            "failed": [100, 140],
            "batch_id": ["b1", "b2"],
        }
    )
    quality = pd.DataFrame(
        {
            "night": pd.to_datetime(["2026-12-06", "2026-12-06"]),
            "job": ["Lead Enrichment · lead", "Ticket Triage · ticket"],
            "metric": ["p95_s", "success_rate"],
            "verdict": ["degraded", "ok"],
            "current_value": [12.0, 0.44],
            "baseline_value": [9.0, 0.9],
            "change": [1 / 3, -0.46],
            "degraded_since": pd.to_datetime(["2026-12-05", None]),
            "moved": ['step "Qualify lead" (prompt): slower than usual 310 of 1200', None],
        }
    )
    failures = pd.DataFrame(
        {
            "error_class": ["HTTP 502", "Timeout"],
            "record_type": ["lead", "lead"],
            "step_name": ["Lookup company", "Lookup company"],
            "failures": [40, 3],
            "first_seen": pd.to_datetime(["2026-12-06 02:01", "2026-12-01 02:01"], utc=True),
        }
    )
    kpis = pd.DataFrame(
        {
            "metric": ["success_rate", "p95_s", "estimated_cost_per_night_usd"],
            "current": [0.85, 12.0, 8.7],
            "previous": [0.91, 9.0, 8.5],
            "delta": [-0.06, 3.0, 0.2],
            "delta_pct": [-0.066, 1 / 3, 0.024],
        }
    )
    chronic = pd.DataFrame({"record_id": ["r1", "r2"]})
    notices = what_needs_attention(
        night=night,
        batches=batches,
        quality=quality,
        failures=failures,
        kpis=kpis,
        chronic=chronic,
    )
    texts = [n.text for n in notices]
    assert [n.level for n in notices[:2]] == ["alert", "alert"]
    assert texts[0].startswith("Ticket Triage: below floor (140 of 250 records failed")
    assert texts[1].startswith("Lead Enrichment · lead: p95_s degraded, 12.00s vs 9.00s")
    assert texts[1].endswith('; step "Qualify lead" (prompt): slower than usual 310 of 1200')
    assert any(t.startswith("success rate 85.0%, down 6.0 points") for t in texts)
    assert any(t.startswith("p95 execution time 12.00s, up 33%") for t in texts)
    assert not any(t.startswith("estimated cost") for t in texts)  # +2.4% is no news
    assert any(t.startswith("new error: HTTP 502 (lead · Lookup company), 40") for t in texts)
    assert not any("Timeout" in t for t in texts)  # seen before
    assert texts[-1] == "2 records failed on at least 3 of their last 5 nights"
    quiet = what_needs_attention(
        night=night,
        batches=batches.iloc[:1],
        quality=quality.iloc[1:],
        failures=failures.iloc[1:],
        kpis=kpis.assign(delta=[0.0, 0.0, 0.0], delta_pct=[0.0, 0.0, 0.0]),
        chronic=chronic.iloc[:0],
    )
    assert quiet == []


def test_partial_nights_and_repairs_read_true_on_every_surface(tmp_path):
    """Night 2 of alpha ran 2 of its 4 records (incremental), and a repair cured r2: the
    trend reads the record type's state (4 records, all fine), the gate the night's first
    attempts (2, one failed), and the report shows what was run, saved and repaired."""
    db = build(tmp_path / "partial.duckdb")
    with Warehouse(db) as w, w.transaction() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, flow_id, record_type, run_key, status, outcome,"
            " total_cost_usd, landed_at, requested_at) VALUES ('b5', 'flow_1', 'alpha',"
            " '2026-11-02', 'completed', 'completed', 0.1, '2026-11-02 05:00:00+00',"
            " '2026-11-02 04:00:00+00')"
        )
        cur.execute(
            "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
            " success, execution_time_s, executed_at, landed_at) VALUES ('b5', 'r2', 'alpha',"
            " 'flow_1', 'completed', true, 6.0, '2026-11-02 04:30:00+00', now())"
        )
        cur.execute("UPDATE record_results SET executed_at = '2026-11-02 02:30:00+00'"
                    " WHERE batch_id = 'b2'")  # fmt: skip
        for part, batch in (("incremental 1/1", "b2"), ("repair 1/1", "b5")):
            cur.execute(
                "INSERT INTO run_intents (flow_id, record_type, run_key, part, requested_at,"
                " batch_id) VALUES ('flow_1', 'alpha', '2026-11-02', ?, now(), ?)",
                [part, batch],
            )
        cur.execute(
            "INSERT INTO run_selections VALUES ('flow_1', 'alpha', '2026-11-02', 'incremental',"
            " false, ['r1', 'r2'], '{\"changed\": 2}', 4, 'h', now(), NULL)"
        )
    with Warehouse(db) as w:
        w.publish_snapshot(full=True)
    with rta.connect(db) as con:
        night = pd.Timestamp("2026-11-02")
        trend = row(rta.record_type_nights(con), record_type="alpha", night=night)
        assert (trend.records, trend.succeeded) == (4, 4), "the state: r3, r4 from night 1"
        assert (trend.attempts, trend.attempts_failed) == (3, 1)
        names = [t.name for t in figures.success_rate_over_time(rta.record_type_nights(con)).data]
        assert "alpha · the night's attempts" in names, "the partial night's attempts, dotted"
        assert "beta · the night's attempts" not in names, "beta ran every record"
        (gate,) = con.execute(
            "SELECT records, failed FROM job_nights WHERE record_type = 'alpha'"
            " AND night = DATE '2026-11-02'"
        ).fetchall()
        assert gate == (2, 1), "the gate judges the night's first attempts"
        (repairs,) = con.execute(
            "SELECT records, first_attempt_success_rate, after_repair_success_rate, repaired"
            " FROM night_repairs WHERE record_type = 'alpha' AND night = DATE '2026-11-02'"
        ).fetchall()
        assert repairs == (2, 0.5, 1.0, 1)
        saved = con.execute(
            "SELECT type_records, records_run, records_saved FROM incremental_savings"
        ).fetchall()
        assert saved == [(4, 2, 2)]
    page = rta.build_report(db, tmp_path / "r.html").read_text()
    assert "Incremental nights and repairs" in page and "2 of 4" in page

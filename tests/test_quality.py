"""The quality gate: per job, n-aware tests, a baseline of clean nights, stored verdicts, and
a replay that scores it against what the sandbox planted."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from runtype_prefect.gate import QualityThresholds, judge_night, judge_nights, latest_verdicts
from runtype_prefect.gate.stats import binomial_sf
from runtype_prefect.gate.verdicts import Metric, VerdictKind
from runtype_prefect.orchestration.quality import quality_markdown
from runtype_prefect.warehouse import Warehouse

TONIGHT = date(2026, 11, 20)


def plant(
    w: Warehouse,
    record_type: str,
    night: date,
    *,
    failed: int,
    seconds: float,
    records: int = 200,
    flow_id: str = "flow_1",
) -> None:
    """Land one night of a job: ``records`` records, ``failed`` of them failed, execution times
    spread evenly from ``seconds`` to 2 × ``seconds``."""
    batch = f"batch_{flow_id}_{record_type}_{night}"
    every = max(1, records // max(1, failed))  # every n-th record fails, the first ``failed``
    with w.transaction() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, flow_id, record_type, run_key, job_name, status,"
            " outcome) VALUES (?, ?, ?, ?, ?, 'completed', 'completed')",
            [batch, flow_id, record_type, night.isoformat(), f"Job {flow_id}"],
        )
        cur.execute(
            "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
            " success, execution_time_s, landed_at) SELECT ?, 'r' || i, ?, ?,"
            " CASE WHEN i % ? = 0 AND i / ? < ? THEN 'failed' ELSE 'completed' END,"
            " NOT (i % ? = 0 AND i / ? < ?), ? * (1 + i / ?), now() FROM range(?) t(i)",
            [batch, record_type, flow_id, *([every, every, failed] * 2), seconds, records, records],
        )


def history(
    w: Warehouse, record_type: str, nights: int = 14, failed: int | None = None, **kw
) -> None:
    """Ordinary nights before TONIGHT: about 3 % failed (5 to 7 of 200), unless ``failed``."""
    for days_ago in range(1, nights + 1):
        count = failed if failed is not None else 5 + days_ago % 3
        plant(w, record_type, TONIGHT - timedelta(days=days_ago), failed=count, seconds=1.0, **kw)


@pytest.fixture
def w(tmp_path):
    with Warehouse(tmp_path / "q.duckdb") as warehouse:
        yield warehouse


def by_key(verdicts):
    return {(v.record_type, v.flow_id, v.metric): v for v in verdicts}


def test_binomial_tail_is_exact():
    assert binomial_sf(0, 10, 0.3) == 1.0
    assert binomial_sf(11, 10, 0.3) == 0.0
    # P(X ≥ 2) for Binomial(3, 0.5) = 4/8
    assert binomial_sf(2, 3, 0.5) == pytest.approx(0.5)
    exact = sum(math.comb(40, i) * 0.05**i * 0.95 ** (40 - i) for i in range(7, 41))
    assert binomial_sf(7, 40, 0.05) == pytest.approx(exact, rel=1e-9)
    assert 0 < binomial_sf(300, 1200, 0.1) < 1e-30  # log space: no underflow to garbage


def test_a_failure_spike_and_a_slowdown_are_flagged_and_business_as_usual_is_not(w):
    history(w, "alpha")
    history(w, "beta")
    plant(w, "alpha", TONIGHT, failed=40, seconds=3.0)  # 80 % success, 3× slower
    plant(w, "beta", TONIGHT, failed=7, seconds=1.05)
    found = by_key(judge_night(w, TONIGHT))
    success = found["alpha", "flow_1", Metric.SUCCESS_RATE]
    assert success.degraded and success.current == pytest.approx(0.8)
    assert success.baseline == pytest.approx(1 - 84.5 / 2801, abs=0.002)
    assert success.p_value < 1e-12 and success.baseline_nights == 14
    assert success.degraded_since == TONIGHT and success.degraded_nights == 1
    assert found["alpha", "flow_1", Metric.P95].degraded
    assert not found["beta", "flow_1", Metric.SUCCESS_RATE].degraded
    assert not found["beta", "flow_1", Metric.P95].degraded
    text = quality_markdown(list(found.values()))
    assert "**DEGRADED** Job flow_1 · alpha: success rate 80.0% vs 97.0%" in text
    assert "ok: 2 of 4 job metrics" in text


def test_two_flows_over_one_record_type_are_judged_apart(w):
    history(w, "lead", flow_id="enrich")
    history(w, "lead", flow_id="score", failed=60)  # a flow that always fails 30 %
    plant(w, "lead", TONIGHT, failed=60, seconds=1.0, flow_id="enrich")
    plant(w, "lead", TONIGHT, failed=60, seconds=1.0, flow_id="score")
    found = by_key(judge_night(w, TONIGHT))
    assert found["lead", "enrich", Metric.SUCCESS_RATE].degraded
    assert not found["lead", "score", Metric.SUCCESS_RATE].degraded, "its own normal"


def test_too_little_data_is_an_explicit_verdict(w):
    history(w, "vip_account", records=6, failed=0)
    plant(w, "vip_account", TONIGHT, failed=3, seconds=5.0, records=6)
    plant(w, "young", TONIGHT - timedelta(days=1), failed=0, seconds=1.0)
    plant(w, "young", TONIGHT, failed=100, seconds=9.0)
    found = by_key(judge_night(w, TONIGHT))
    vip = found["vip_account", "flow_1", Metric.SUCCESS_RATE]
    assert vip.verdict is VerdictKind.NO_VERDICT
    assert vip.reason == "6 records, fewer than the 10 a verdict needs"
    young = found["young", "flow_1", Metric.P95]
    assert young.verdict is VerdictKind.NO_VERDICT
    assert young.reason == "1 clean night in the last 56 days, fewer than the 3 a baseline needs"
    line = "Job flow_1 · vip_account: success_rate no verdict: 6 records, fewer than the 10"
    assert line in quality_markdown(list(found.values()))


def test_a_persistent_regression_stays_flagged_and_says_since_when(w):
    history(w, "alpha", nights=20)
    start = TONIGHT
    for night_of in range(5):  # five slow nights in a row
        plant(w, "alpha", start + timedelta(days=night_of), failed=6, seconds=2.0)
    verdicts = judge_nights(w, start + timedelta(days=4))
    p95 = by_key(verdicts)["alpha", "flow_1", Metric.P95]
    assert p95.degraded and p95.degraded_since == start and p95.degraded_nights == 5
    first = by_key(latest_verdicts(w, start))["alpha", "flow_1", Metric.P95]
    assert p95.baseline == pytest.approx(first.baseline), "the slow nights stay out of it"
    assert "degraded since 11-20, night 5" in p95.describe()


def test_every_verdict_is_stored_one_row_per_job_night_and_metric(w):
    history(w, "alpha", nights=5)
    judge_nights(w, TONIGHT - timedelta(days=1))  # judges the five nights in order
    rows = w.query(
        "SELECT night, metric, verdict, count(*) OVER (PARTITION BY night, metric)"
        " FROM quality_verdicts ORDER BY night, metric"
    )
    assert len(rows) == 10 and {r[3] for r in rows} == {1}
    assert [r[2] for r in rows[:6]] == ["no_verdict"] * 6  # three nights without a baseline
    assert {r[2] for r in rows[6:]} == {"ok"}
    judge_night(w, TONIGHT - timedelta(days=1), QualityThresholds())  # judging again replaces
    assert w.query("SELECT count(*) FROM quality_verdicts")[0][0] == 10


def test_thresholds_are_settable(w):
    history(w, "alpha")
    plant(w, "alpha", TONIGHT, failed=13, seconds=1.0)  # 6.5 % against ~3 %
    assert not by_key(judge_night(w, TONIGHT))["alpha", "flow_1", Metric.SUCCESS_RATE].degraded
    loose = QualityThresholds(alpha=0.05, min_failure_ratio=1.5)
    assert by_key(judge_night(w, TONIGHT, loose))["alpha", "flow_1", Metric.SUCCESS_RATE].degraded


def plant_steps(
    w: Warehouse,
    night: date,
    steps: dict[str, tuple[str, str | None, int]],
    *,
    records: int = 40,
    flow_id: str = "flow_s",
    seconds: float = 1.0,
) -> None:
    """Land one night of a small job whose records run ``steps`` in order: name → (step
    type, model, executions that fail). A record stops at its first failed step."""
    batch = f"batch_{flow_id}_{night}"
    failed_records: set[int] = set()
    rows = []
    for order, (name, (step_type, model, failed)) in enumerate(steps.items()):
        alive = [i for i in range(records) if i not in failed_records]
        for n, i in enumerate(alive):
            fails = n < failed
            rows.append((f"s_{night}_{i}_{order}", i, name, step_type, model, fails))
            if fails:
                failed_records.add(i)
    with w.transaction() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, flow_id, record_type, run_key, job_name, status,"
            " outcome) VALUES (?, ?, 'small', ?, 'Small', 'completed', 'completed')",
            [batch, flow_id, night.isoformat()],
        )
        cur.executemany(
            "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
            " success, execution_time_s, landed_at) VALUES (?, ?, 'small', ?, ?, ?, ?, now())",
            [
                [batch, f"r{i}", flow_id, "failed" if i in failed_records else "completed",
                 i not in failed_records, seconds * (1 + i / records)]
                for i in range(records)
            ],
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO step_results (id, batch_execution_id, flow_id, record_id, record_type,"
            " step_name, step_type, status, duration_ms, model_used, landed_at)"
            " VALUES (?, ?, ?, ?, 'small', ?, ?, ?, ?, ?, now())",
            [
                [sid, batch, flow_id, f"r{i}", name, stype, "failed" if fails else "completed",
                 int(500 * (1 + i / records)), model]
                for sid, i, name, stype, model, fails in rows
            ],
        )  # fmt: skip


def test_a_step_failing_5x_in_a_small_job_is_flagged_and_named(w):
    """40 records, three steps: the api-call step fails 1 in 40 on ordinary nights and 7 in
    40 tonight. The verdict names that step first, with its counts, and keeps it stored."""
    for days_ago in range(1, 15):
        ordinary = {
            "Fetch": ("api-call", None, days_ago % 2),
            "Summarise": ("prompt", "m1", int(days_ago % 3 == 0)),
            "Format": ("transform-data", None, 0),
        }
        plant_steps(w, TONIGHT - timedelta(days=days_ago), ordinary)
    plant_steps(
        w,
        TONIGHT,
        {"Fetch": ("api-call", None, 7), "Summarise": ("prompt", "m1", 0),
         "Format": ("transform-data", None, 0)},
    )  # fmt: skip
    verdicts = by_key(judge_night(w, TONIGHT))
    success = verdicts["small", "flow_s", Metric.SUCCESS_RATE]
    assert success.degraded
    first = success.attribution[0]
    assert (first.unit, first.name, first.step_type, first.measure) == (
        "step", "Fetch", "api-call", "failures",
    )  # fmt: skip
    assert (first.bad, first.executions) == (7, 40) and first.p_value < 0.001
    assert 'step "Fetch" (api-call): failures 7 of 40 vs' in success.describe()
    stored = by_key(latest_verdicts(w, TONIGHT))["small", "flow_s", Metric.SUCCESS_RATE]
    assert stored.attribution == success.attribution
    assert not verdicts["small", "flow_s", Metric.P95].degraded
    # The report's opening reads it from the quality_history model, in words.
    ((moved,),) = w.query(
        "SELECT moved FROM quality_history WHERE night = ? AND metric = 'success_rate'", [TONIGHT]
    )
    assert moved == 'step "Fetch" (api-call): failures 7 of 40'
    from runtype_prefect.analytics.attention import gate_notices

    quality = w.query_arrow("SELECT * FROM quality_history").to_pandas()
    quality["night"] = quality["night"].astype("datetime64[ns]")  # as the report reads it
    (notice,) = gate_notices(quality, TONIGHT)
    assert notice.text.endswith('; step "Fetch" (api-call): failures 7 of 40')


def test_the_varying_rate_tail_is_the_negative_binomial():
    from runtype_prefect.gate.stats import negative_binomial_sf, rate_variation

    assert negative_binomial_sf(0, 3.0, 0.2) == 1.0
    poisson = 1 - sum(math.exp(-3.0) * 3.0**i / math.factorial(i) for i in range(6))
    assert negative_binomial_sf(6, 3.0, 0.0) == pytest.approx(poisson, rel=1e-9)
    r, mean = 5.0, 3.0  # c² = 1/r: the pmf by its closed form
    p = r / (r + mean)
    pmf = [math.comb(int(i + r - 1), i) * p**r * (1 - p) ** i for i in range(200)]
    assert negative_binomial_sf(6, mean, 1 / r) == pytest.approx(sum(pmf[6:]), rel=1e-9)
    assert negative_binomial_sf(6, mean, 0.2) > negative_binomial_sf(6, mean, 0.0)
    assert 0 < negative_binomial_sf(400, 3.0, 0.1) < 1e-30  # the tail summed, not 1 - head
    # Nights whose rate is the same each night vary by chance alone: no variation beyond it.
    assert rate_variation([[(4, 100), (5, 100), (4, 100), (5, 100)]]) < 0.05
    assert rate_variation([[(1, 100), (9, 100), (2, 100), (12, 100)]]) > 0.3

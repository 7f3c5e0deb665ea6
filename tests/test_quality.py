"""The quality gate on warehouses with and without a planted regression."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from runtype_prefect.orchestration import quality
from runtype_prefect.orchestration.quality import (
    QualityThresholds,
    evaluate_quality,
    quality_markdown,
)
from runtype_prefect.warehouse import Warehouse

TONIGHT = date(2026, 11, 20)


def plant(
    w: Warehouse, record_type: str, night: date, *, failed: int, seconds: float, records: int = 50
) -> None:
    """Land one night of ``records`` records, ``failed`` of them failed, taking ``seconds``."""
    batch = f"batch_{record_type}_{night}"
    with w.transaction() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, flow_id, record_type, run_key, status, outcome)"
            " VALUES (?, 'flow_1', ?, ?, 'completed', 'completed')",
            [batch, record_type, night.isoformat()],
        )
        cur.execute(
            "INSERT INTO record_results (batch_id, record_id, record_type, flow_id, status,"
            " success, execution_time_s, landed_at) SELECT ?, 'r' || i, ?, 'flow_1',"
            " CASE WHEN i < ? THEN 'failed' ELSE 'completed' END, i >= ?, ? + i / 100.0, now()"
            " FROM range(?) t(i)",
            [batch, record_type, failed, failed, seconds, records],
        )


@pytest.fixture
def history(tmp_path):
    with Warehouse(tmp_path / "q.duckdb") as w:
        for days_ago in range(1, 8):
            plant(w, "alpha", TONIGHT - timedelta(days=days_ago), failed=1, seconds=1.0)
            plant(w, "beta", TONIGHT - timedelta(days=days_ago), failed=1, seconds=1.0)
        plant(w, "young", TONIGHT - timedelta(days=1), failed=0, seconds=1.0)
        yield w


def by_key(findings):
    return {(f.record_type, f.metric): f for f in findings}


def test_a_planted_regression_is_found(history):
    plant(history, "alpha", TONIGHT, failed=10, seconds=3.0)  # 80 % success, 3× slower
    plant(history, "beta", TONIGHT, failed=1, seconds=1.0)  # business as usual
    plant(history, "young", TONIGHT, failed=25, seconds=9.0)  # bad, but only 1 night of history
    found = by_key(evaluate_quality(history, TONIGHT))
    success = found["alpha", "success_rate"]
    assert success.degraded and success.current == 0.8 and success.baseline == pytest.approx(0.98)
    assert success.change == pytest.approx(-0.18) and success.baseline_nights == 7
    assert found["alpha", "p95_s"].degraded and found["alpha", "p95_s"].change > 1
    assert not found["beta", "success_rate"].degraded and not found["beta", "p95_s"].degraded
    assert ("young", "success_rate") not in found, "too little history for a verdict"
    text = quality_markdown(list(found.values()))
    assert "**DEGRADED** alpha: success rate 80.0% vs 98.0%" in text
    assert "ok beta" in text


def test_no_regression_no_degraded_finding(history):
    plant(history, "alpha", TONIGHT, failed=2, seconds=1.1)
    plant(history, "beta", TONIGHT, failed=0, seconds=0.9)
    findings = evaluate_quality(history, TONIGHT)
    assert findings and not any(f.degraded for f in findings)


def test_thresholds_are_settable(history):
    plant(history, "alpha", TONIGHT, failed=3, seconds=1.0)  # 94 %: 4 points down
    assert not any(f.degraded for f in evaluate_quality(history, TONIGHT))
    strict = QualityThresholds(max_success_rate_drop=0.02)
    assert by_key(evaluate_quality(history, TONIGHT, strict))["alpha", "success_rate"].degraded


def test_degraded_findings_are_emitted_as_events(history, monkeypatch):
    emitted = []
    monkeypatch.setattr(quality, "emit_event", lambda **kw: emitted.append(kw))
    plant(history, "alpha", TONIGHT, failed=20, seconds=1.0)
    plant(history, "beta", TONIGHT, failed=1, seconds=1.0)
    quality.emit_degraded(evaluate_quality(history, TONIGHT))
    assert [e["event"] for e in emitted] == ["runtype.quality.degraded"]
    assert emitted[0]["resource"]["prefect.resource.id"] == "runtype.record-type.alpha"
    assert emitted[0]["payload"]["metric"] == "success_rate"
    assert emitted[0]["payload"]["current"] == 0.6

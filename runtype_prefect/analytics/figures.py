"""Plotly figure builders over the analytics DataFrames (see `queries`).

Every builder takes the DataFrame its query returns and gives back a figure with a title,
axis labels with units, hover text with the numbers behind each point, and stable colours per
record type and model. An empty DataFrame gives a figure that says so instead of failing.
Time is always shown as percentiles, never means.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .colors import FAILED, SUCCEEDED, color_map
from .queries import KPI_LABELS, prints_as_zero

#: Buckets with fewer records than this are marked as thin (hollow markers, a note in hover).
THIN_BUCKET = 20
TEMPLATE = "plotly_white"


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text="No data for this selection",
        showarrow=False,
        font={"size": 16},
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
    )
    fig.update_layout(
        title=title, template=TEMPLATE, xaxis={"visible": False}, yaxis={"visible": False}
    )
    return fig


def _night_axis(fig: go.Figure, nights: pd.Series) -> None:
    """Tick whole nights (never hours), at most about a dozen ticks."""
    count = max(1, nights.nunique())
    fig.update_xaxes(type="date", tickformat="%b %d", dtick=86_400_000 * math.ceil(count / 12))


def _layout(
    fig: go.Figure, title: str, x: str, y: str, nights: pd.Series | None = None, **kwargs
) -> go.Figure:
    if nights is not None:
        _night_axis(fig, nights)
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        template=TEMPLATE,
        legend_title_text=kwargs.pop("legend", None),
        **kwargs,
    )
    return fig


#: The colour of a KPI change too small to show (it prints as 0.0%).
UNCHANGED = "#888888"


def _shows_as_zero(value: float, reference: float, *, relative: bool) -> bool:
    """Return True when the change from ``reference`` to ``value`` prints as 0.0% (the KPIs'
    one-decimal percent format): relative to the reference, or in points for rates."""
    change = (value - reference) / reference if relative and reference else value - reference
    return prints_as_zero(change)


def kpi_figure(kpis: pd.DataFrame, *, title: str = "Last night vs the trailing week") -> go.Figure:
    """Indicators of each KPI with its change against the previous period."""
    if kpis.empty or kpis["current"].isna().all():
        return _empty(title)
    cols = 4
    rows = math.ceil(len(kpis) / cols)
    fig = make_subplots(
        rows=rows, cols=cols, specs=[[{"type": "indicator"}] * cols for _ in range(rows)]
    )
    for i, row in enumerate(kpis.itertuples()):
        label, fmt, lower_is_better = KPI_LABELS.get(row.metric, (row.label, ",.2f", False))
        value = None if pd.isna(row.current) else row.current
        reference = None if pd.isna(row.previous) else row.previous
        percent = fmt.endswith("%")
        worse, better = (FAILED, SUCCEEDED) if lower_is_better else (SUCCEEDED, FAILED)
        if (
            value is not None
            and reference is not None
            and _shows_as_zero(value, reference, relative=not percent)
        ):
            worse = better = UNCHANGED  # "▲0.0%" in red would call no change a regression
        fig.add_trace(
            go.Indicator(
                mode="number+delta" if reference is not None else "number",
                value=value,
                number={"valueformat": fmt.lstrip("$"), "prefix": "$" if fmt[0] == "$" else ""},
                delta={
                    "reference": reference,
                    "relative": not percent,  # rates change in points, the rest in percent
                    "valueformat": ".1%",
                    "increasing": {"color": worse},
                    "decreasing": {"color": better},
                },
                title={"text": label, "font": {"size": 13}},
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_layout(title=title, template=TEMPLATE, height=220 * rows)
    return fig


def success_rate_over_time(rtn: pd.DataFrame) -> go.Figure:
    """Record success rate per record type per night with its 95 % Wilson interval as error
    bars (wide on small nights: a dip there may be noise); thin buckets get hollow markers.
    The rate is of the record type's state (each record's latest result); a type whose nights
    ran only some of its records (incremental nights) adds a dotted line of the rate of the
    night's attempts."""
    title = "Record success rate per record type"
    if rtn.empty:
        return _empty(title)
    colors = color_map(rtn["record_type"])
    intervals = {"success_rate_low", "success_rate_high"} <= set(rtn.columns)
    fig = go.Figure()
    for record_type, group in rtn.groupby("record_type", sort=True):
        thin = group["records"] < THIN_BUCKET
        low = group["success_rate_low"] if intervals else group["success_rate"]
        high = group["success_rate_high"] if intervals else group["success_rate"]
        fig.add_trace(
            go.Scatter(
                x=group["night"],
                y=group["success_rate"],
                name=str(record_type),
                mode="lines+markers",
                line={"color": colors[str(record_type)]},
                marker={"size": 9, "symbol": ["circle-open" if t else "circle" for t in thin]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": high - group["success_rate"],
                    "arrayminus": group["success_rate"] - low,
                    "thickness": 1,
                    "width": 3,
                    "visible": intervals,
                },
                customdata=list(
                    zip(
                        group["records"],
                        group["failed"],
                        ["thin bucket" if t else "" for t in thin],
                        low,
                        high,
                        strict=True,
                    )
                ),
                hovertemplate="%{x|%Y-%m-%d}<br>success %{y:.1%} of %{customdata[0]} records"
                " (95 % interval %{customdata[3]:.1%} – %{customdata[4]:.1%})"
                "<br>%{customdata[1]} failed %{customdata[2]}<extra>%{fullData.name}</extra>",
                legendgroup=str(record_type),
            )
        )
        if "attempts" in group and (group["attempts"] != group["records"]).any():
            fig.add_trace(
                go.Scatter(
                    x=group["night"],
                    y=group["attempt_success_rate"],
                    name=f"{record_type} · the night's attempts",
                    mode="lines",
                    line={"color": colors[str(record_type)], "dash": "dot", "width": 1},
                    legendgroup=str(record_type),
                    customdata=group["attempts"],
                    hovertemplate="%{x|%Y-%m-%d}<br>%{y:.1%} of the %{customdata} records"
                    " run that night<extra>%{fullData.name}</extra>",
                )
            )
    fig.update_yaxes(tickformat=".0%")
    return _layout(
        fig,
        title + f" (bars: 95 % Wilson interval; hollow: fewer than {THIN_BUCKET} records)",
        "Night",
        "Records succeeded (%)",
        nights=rtn["night"],
        legend="Record type",
    )


def outcomes_over_time(rtn: pd.DataFrame) -> go.Figure:
    """Succeeded and failed records per night, stacked."""
    title = "Record outcomes per night"
    if rtn.empty:
        return _empty(title)
    nightly = rtn.groupby("night", as_index=False)[["succeeded", "failed"]].sum()
    fig = go.Figure(
        [
            go.Bar(
                x=nightly["night"],
                y=nightly[col],
                name=col,
                marker_color=color,
                hovertemplate="%{x|%Y-%m-%d}: %{y:,} records " + col + "<extra></extra>",
            )
            for col, color in (("succeeded", SUCCEEDED), ("failed", FAILED))
        ]
    )
    fig.update_layout(barmode="stack")
    return _layout(fig, title, "Night", "Records", nights=nightly["night"], legend="Outcome")


def latency_percentiles_over_time(rtn: pd.DataFrame) -> go.Figure:
    """p50 (solid), p95 (dashed) and p99 (dotted) execution time per night, one small panel per
    record type (one chart of every line had twelve lines and a legend that overflowed)."""
    title = "Execution time percentiles per record type"
    if rtn.empty:
        return _empty(title)
    colors = color_map(rtn["record_type"])
    types = sorted(str(t) for t in rtn["record_type"].unique())
    fig = make_subplots(
        rows=len(types), cols=1, shared_xaxes=True, subplot_titles=types, vertical_spacing=0.08
    )
    styles = (("p50_s", "solid"), ("p95_s", "dash"), ("p99_s", "dot"))
    for row, record_type in enumerate(types, start=1):
        group = rtn[rtn["record_type"].astype(str) == record_type]
        for col, dash in styles:
            fig.add_trace(
                go.Scatter(
                    x=group["night"],
                    y=group[col],
                    mode="lines+markers",
                    name=col[:3],
                    legendgroup=col,
                    showlegend=row == 1,  # one legend entry per percentile
                    line={"color": colors[record_type], "dash": dash},
                    customdata=group["records"],
                    hovertemplate="%{x|%Y-%m-%d}<br>" + col[:3] + " %{y:.2f} s over"
                    " %{customdata:,} records<extra>" + record_type + "</extra>",
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(title_text="s", rangemode="tozero", row=row, col=1)
    _night_axis(fig, rtn["night"])
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        height=140 + 170 * len(types),
        legend_title_text="Percentile",
    )
    fig.update_xaxes(title_text="Night", row=len(types), col=1)
    return fig


def latency_distribution(times: pd.DataFrame) -> go.Figure:
    """Cumulative distribution of execution times per record type, on a log axis."""
    title = "Execution time distribution (log axis)"
    if times.empty:
        return _empty(title)
    colors = color_map(times["record_type"])
    fig = px.ecdf(
        times,
        x="execution_time_s",
        color="record_type",
        log_x=True,
        color_discrete_map=colors,
        category_orders={"record_type": sorted(colors)},
    )
    fig.update_traces(
        hovertemplate="%{y:.0%} of records took ≤ %{x:.2f} s<extra>%{fullData.name}</extra>"
    )
    fig.update_yaxes(tickformat=".0%")
    return _layout(
        fig,
        title,
        "Execution time per record (s, log)",
        "Records at or below (%)",
        legend="Record type",
    )


def _solid_and_dotted(
    data: pd.DataFrame, by: str, solid: tuple[str, str], dotted: tuple[str, str], unit: str
) -> go.Figure:
    """Two lines per value of ``by`` over the nights, one colour each: ``solid`` and
    ``dotted`` are (column, hover word); the legend lists each value once."""
    colors = color_map(data[by])
    fig = go.Figure()
    for key, group in data.groupby(by, sort=True):
        for (column, what), dash, show in ((solid, "solid", True), (dotted, "dot", False)):
            fig.add_trace(
                go.Scatter(
                    x=group["night"],
                    y=group[column],
                    name=str(key),
                    legendgroup=str(key),
                    showlegend=show,
                    mode="lines+markers",
                    line={"color": colors[str(key)], "dash": dash},
                    hovertemplate=f"%{{x|%Y-%m-%d}}: {what} %{{y:,.2f}} {unit}"
                    "<extra>%{fullData.name}</extra>",
                )
            )
    return fig


def batch_timing_over_time(timing: pd.DataFrame) -> go.Figure:
    """Per job and night: the batch's wall time (solid) and how long it queued before it
    started (dotted). Immediate runs (10 records or fewer) have no wall time of their own."""
    title = "Batch wall time (solid) and queue wait (dotted) per job"
    data = timing.dropna(subset=["wall_s"]) if not timing.empty else timing
    if data.empty:
        return _empty(title)
    data = data.assign(job=data["job_name"].fillna(data["record_type"]).astype(str))
    fig = _solid_and_dotted(data, "job", ("wall_s", "ran"), ("queue_wait_s", "queued"), "s")
    return _layout(fig, title, "Night", "Seconds", nights=data["night"], legend="Job")


def _step_bars(
    steps: pd.DataFrame,
    x: str,
    customdata: list[str],
    hovertemplate: str,
    error_x: Callable[[pd.DataFrame], dict] | None = None,
) -> go.Figure:
    """Horizontal bars of column ``x`` per step ("<order>. <name>"), one trace per record type,
    grouped, first step on top."""
    colors = color_map(steps["record_type"])
    fig = go.Figure()
    for record_type, group in steps.groupby("record_type", sort=True):
        labels = [f"{o}. {n}" for o, n in zip(group["step_order"], group["step_name"], strict=True)]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=group[x],
                orientation="h",
                name=str(record_type),
                marker_color=colors[str(record_type)],
                error_x=error_x(group) if error_x else None,
                customdata=list(zip(*(group[c] for c in customdata), strict=True)),
                hovertemplate=hovertemplate + "<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group", height=max(400, 40 * len(steps)))
    fig.update_yaxes(autorange="reversed")
    return fig


def step_durations(steps: pd.DataFrame) -> go.Figure:
    """Where the time goes: p50 duration per step (bar) with p95 as error bar, per record type."""
    title = "Duration per step (bar p50, whisker p95)"
    if steps.empty:
        return _empty(title)
    fig = _step_bars(
        steps,
        "p50_s",
        ["p95_s", "executions", "failure_rate"],
        "%{y}<br>p50 %{x:.2f} s, p95 %{customdata[0]:.2f} s<br>"
        "%{customdata[1]:,} runs, %{customdata[2]:.1%} failed",
        error_x=lambda g: {
            "type": "data",
            "symmetric": False,
            "array": (g["p95_s"] - g["p50_s"]).clip(lower=0),
        },
    )
    return _layout(fig, title, "Step duration (s)", "Step", legend="Record type")


def cost_per_step(steps: pd.DataFrame) -> go.Figure:
    """What each step costs over the selection: estimated cost per step (bar) per record type,
    tokens and cost per execution on hover. Steps that call no model cost nothing and are left
    out."""
    title = "Estimated cost per step"
    costly = steps[steps["estimated_cost_usd"] > 0] if not steps.empty else steps
    if costly.empty:
        return _empty(title)
    fig = _step_bars(
        costly,
        "estimated_cost_usd",
        ["tokens", "executions", "estimated_cost_per_execution_usd"],
        "%{y}<br>$%{x:.4f} over %{customdata[1]:,} runs ($%{customdata[2]:.5f} each)"
        "<br>%{customdata[0]:,} tokens",
    )
    fig.update_xaxes(tickprefix="$")
    return _layout(fig, title, "Estimated cost (USD)", "Step", legend="Record type")


def model_latency_over_time(usage: pd.DataFrame) -> go.Figure:
    """p95 (solid) and p50 (dotted) call duration per model per night: a model that slows down
    shows here even when the aggregate over all models hides it."""
    title = "Model latency per night (solid p95, dotted p50)"
    if usage.empty:
        return _empty(title)
    fig = _solid_and_dotted(usage, "model", ("p95_s", "p95"), ("p50_s", "p50"), "s")
    return _layout(fig, title, "Night", "Call duration (s)", nights=usage["night"], legend="Model")


def flow_version_comparison(versions: pd.DataFrame) -> go.Figure:
    """Success rate per flow version (in the order they first ran) for each record type, with
    95 % Wilson intervals: versions whose bars do not overlap differ beyond night-to-night
    noise. p50/p95, records and estimated cost per success on hover."""
    title = "Success rate by flow version (bars: 95 % Wilson interval)"
    if versions.empty:
        return _empty(title)
    colors = color_map(versions["record_type"])
    fig = go.Figure()
    for record_type, group in versions.groupby("record_type", sort=True):
        group = group.sort_values("first_seen_night")
        labels = [
            f"{str(v)[-8:]} (from {pd.Timestamp(d):%m-%d})"
            for v, d in zip(group["flow_version_id"], group["first_seen_night"], strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=group["success_rate"],
                name=str(record_type),
                mode="markers",
                marker={"size": 10, "color": colors[str(record_type)]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": group["success_rate_high"] - group["success_rate"],
                    "arrayminus": group["success_rate"] - group["success_rate_low"],
                },
                customdata=list(
                    zip(
                        group["flow_version_id"],
                        group["records"],
                        group["p50_s"],
                        group["p95_s"],
                        group["estimated_cost_per_success_usd"].fillna(0.0),
                        group["nights"],
                        strict=True,
                    )
                ),
                hovertemplate="%{customdata[0]}<br>success %{y:.1%} of %{customdata[1]:,}"
                " records over %{customdata[5]} nights<br>p50 %{customdata[2]:.2f} s,"
                " p95 %{customdata[3]:.2f} s<br>$%{customdata[4]:.5f} per success"
                "<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_yaxes(tickformat=".1%")
    return _layout(fig, title, "Flow version (first night)", "Records succeeded (%)",
                   legend="Record type")  # fmt: skip


def success_by_segment(segments: pd.DataFrame, field: str) -> go.Figure:
    """Success rate per value of a records' metadata field, with 95 % Wilson intervals;
    executions and p95 on hover. The largest segments first."""
    title = f"Record success rate by {field}"
    if segments.empty:
        return _empty(title)
    labels = segments["segment"].fillna("(none)").astype(str)
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=segments["success_rate"],
            marker_color=SUCCEEDED,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": segments["success_rate_high"] - segments["success_rate"],
                "arrayminus": segments["success_rate"] - segments["success_rate_low"],
            },
            customdata=list(zip(segments["records"], segments["p95_s"].fillna(0), strict=True)),
            hovertemplate="%{x}: %{y:.1%} of %{customdata[0]:,} runs, p95 %{customdata[1]:.2f} s"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(tickformat=".1%")
    return _layout(fig, title, field, "Records succeeded (%)")


#: The gate's verdicts as heatmap values and their colours.
_VERDICTS = {"ok": (0, SUCCEEDED), "no_verdict": (1, "#cccccc"), "degraded": (2, FAILED)}


def quality_verdicts_over_time(history: pd.DataFrame) -> go.Figure:
    """The quality gate's verdict per job, metric and night: green ok, grey no verdict, red
    degraded; tonight against the baseline and the reason on hover."""
    title = "Quality gate verdicts per job and night (green ok, red degraded, grey no verdict)"
    if history.empty:
        return _empty(title + ": the gate has not judged any night in this selection")
    rows = history.assign(row=history["job"] + " · " + history["metric"])
    grid = rows.pivot_table(
        index="row", columns="night", values="verdict", aggfunc="first"
    ).sort_index()
    reasons = rows.pivot_table(index="row", columns="night", values="reason", aggfunc="first")
    reasons = reasons.reindex(index=grid.index, columns=grid.columns)
    z = grid.map(lambda v: _VERDICTS.get(v, (None,))[0] if isinstance(v, str) else None)
    fig = go.Figure(
        go.Heatmap(
            x=list(grid.columns),
            y=list(grid.index),
            z=z.to_numpy(dtype=float),
            zmin=0,
            zmax=2,
            colorscale=[
                [0.0, _VERDICTS["ok"][1]],
                [0.33, _VERDICTS["ok"][1]],
                [0.34, _VERDICTS["no_verdict"][1]],
                [0.66, _VERDICTS["no_verdict"][1]],
                [0.67, _VERDICTS["degraded"][1]],
                [1.0, _VERDICTS["degraded"][1]],
            ],
            showscale=False,
            xgap=2,
            ygap=2,
            customdata=np.dstack([grid.fillna("").to_numpy(), reasons.fillna("").to_numpy()]),
            hovertemplate="%{y}<br>%{x|%Y-%m-%d}: %{customdata[0]}<br>%{customdata[1]}"
            "<extra></extra>",
        )
    )
    fig.update_layout(height=max(300, 28 * len(grid) + 140))
    return _layout(fig, title, "Night", "", nights=rows["night"])


def latency_by_model(models: pd.DataFrame) -> go.Figure:
    """p50 and p95 step duration per model."""
    title = "Latency by model"
    if models.empty:
        return _empty(title)
    colors = color_map(models["model"])
    fig = go.Figure()
    for col, opacity in (("p50_s", 1.0), ("p95_s", 0.55)):
        fig.add_trace(
            go.Bar(
                x=models["model"],
                y=models[col],
                name=col[:3],
                opacity=opacity,
                marker_color=[colors[m] for m in models["model"]],
                customdata=models["calls"],
                hovertemplate="%{x}: " + col[:3] + " %{y:.2f} s over %{customdata:,} calls"
                "<extra></extra>",
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, title, "Model", "Step duration (s)", legend="Percentile")


def short_labels(names: list[str], width: int = 48) -> list[str]:
    """Return an axis label per name, at most ``width`` characters: a long name keeps its start
    and its end (``TypeError: Cannot read…(reading 'id')``), since names of one kind differ at
    the end; labels that would still be alike get a number."""
    head = (width - 1) * 3 // 5
    labels = [n if len(n) <= width else n[:head] + "…" + n[-(width - 1 - head) :] for n in names]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    count: dict[str, int] = {}
    unique = []
    for label in labels:
        if seen[label] == 1:
            unique.append(label)
            continue
        count[label] = count.get(label, 0) + 1
        tag = f" #{count[label]}"
        unique.append(label[: width - len(tag)] + tag)
    return unique


def error_pareto(pareto: pd.DataFrame) -> go.Figure:
    """Failures per error class (bars) with the cumulative share (line, right axis)."""
    title = "Error Pareto: failures by error class"
    if pareto.empty:
        return _empty(title)
    # One bar per full class: the axis shows shortened names, but bars are keyed on the whole
    # class (classes sharing their first 45 characters would otherwise merge into one bar).
    classes = pareto["error_class"].astype(str).tolist()
    labels = short_labels(classes)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=classes,
            y=pareto["failures"],
            name="failures",
            marker_color=FAILED,
            customdata=list(zip(pareto["error_class"], pareto["share"], strict=True)),
            hovertemplate="%{customdata[0]}<br>%{y:,} failures "
            "(%{customdata[1]:.1%})<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=classes,
            y=pareto["cumulative_share"],
            name="cumulative share",
            mode="lines+markers",
            line={"color": "#444"},
            hovertemplate="cumulative %{y:.0%}<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="Failed steps", secondary_y=False)
    fig.update_yaxes(
        title_text="Cumulative share",
        tickformat=".0%",
        tickvals=[0, 0.25, 0.5, 0.75, 1],  # left alone, it follows the left axis: 0/24/47/71/95
        range=[0, 1.05],
        showgrid=False,
        secondary_y=True,
    )
    fig.update_xaxes(tickmode="array", tickvals=classes, ticktext=labels)
    fig.update_layout(title=title, template=TEMPLATE, xaxis_title="Error class", height=520)
    return fig


def error_classes_over_time(nights: pd.DataFrame, *, top: int = 6) -> go.Figure:
    """Failed steps per night stacked by error class: the ``top`` classes of the selection by
    failures, the rest as "other classes"."""
    title = "Failures per night by error class"
    if nights.empty:
        return _empty(title)
    totals = nights.groupby("error_class")["failures"].sum().sort_values(ascending=False)
    leading = list(totals.index[:top])
    shown = nights.assign(
        error_class=nights["error_class"].where(
            nights["error_class"].isin(leading), "other classes"
        )
    )
    per_night = shown.groupby(["night", "error_class"], as_index=False)["failures"].sum()
    order = leading + (["other classes"] if len(totals) > top else [])
    palette = px.colors.qualitative.Safe
    fig = go.Figure(
        [
            go.Bar(
                x=group["night"],
                y=group["failures"],
                name=name if len(name) <= 48 else name[:45] + "…",
                marker_color="#bbbbbb" if name == "other classes" else palette[i % len(palette)],
                hovertemplate="%{x|%Y-%m-%d}<br>%{y:,} failed steps<extra>"
                + name.replace("<", "&lt;")
                + "</extra>",
            )
            for i, name in enumerate(order)
            if not (group := per_night[per_night["error_class"] == name]).empty
        ]
    )
    fig.update_layout(barmode="stack")
    return _layout(
        fig, title, "Night", "Failed steps", nights=nights["night"], legend="Error class"
    )


def rate_ticks(highest: float) -> tuple[float, list[tuple[float, str]]]:
    """Return the top of a 0..``highest`` rate scale and its ticks (value, label): a round
    step that gives 3–6 ticks, each label printed with as many decimals as the step needs, so
    no two ticks read alike (plotly's own ticks at 0.5% printed 5%, 4%, 4%, 3%…)."""
    highest = highest if highest > 0 else 0.01
    step = next(
        s
        for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)
        if highest / s <= 5
    )
    top = round(math.ceil(highest / step - 1e-9) * step, 6)
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9))
    ticks = [
        (round(i * step, 6), f"{i * step * 100:.{decimals}f}%")
        for i in range(round(top / step) + 1)
    ]
    return top, ticks


def failure_heatmap(heat: pd.DataFrame) -> go.Figure:
    """Failure rate per step, one row per record type, each with its own flow's steps (one
    shared axis mixed every flow's steps into a mostly empty grid); 0 % is pale red, a step
    without executions in the selection is grey, so "no data" never looks like "no failures"."""
    title = "Failure rate by record type and step (grey: no executions)"
    if heat.empty:
        return _empty(title)
    types = sorted(str(t) for t in heat["record_type"].unique())
    fig = make_subplots(rows=len(types), cols=1, subplot_titles=types, vertical_spacing=0.12)
    for row, record_type in enumerate(types, start=1):
        group = heat[heat["record_type"].astype(str) == record_type].sort_values("step_order")
        steps = [f"{o}. {n}" for o, n in zip(group["step_order"], group["step_name"], strict=True)]
        fig.add_trace(
            go.Heatmap(
                z=[group["failure_rate"].tolist()],
                x=steps,
                y=[record_type],
                coloraxis="coloraxis",
                customdata=[
                    [[f, r] for f, r in zip(group["failures"], group["executions"], strict=True)]
                ],
                hovertemplate="%{y} · %{x}<br>%{z:.1%} failed (%{customdata[0]:,.0f} of "
                "%{customdata[1]:,.0f})<extra></extra>",
                xgap=2,
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(showticklabels=False, row=row, col=1)
    top, ticks = rate_ticks(float(heat["failure_rate"].max()))
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        height=120 + 120 * len(types),
        plot_bgcolor="#d9d9d9",  # behind cells without data
        coloraxis={
            "colorscale": [[0, "#fde0dd"], [1, "#a50f15"]],
            "cmin": 0,
            "cmax": top,
            "colorbar": {
                "title": "failure rate",
                "tickvals": [v for v, _ in ticks],
                "ticktext": [t for _, t in ticks],
            },
        },
    )
    return fig


def cost_over_time_by_model(usage: pd.DataFrame) -> go.Figure:
    """Estimated cost (sum of the steps' estimates) per night, stacked by model."""
    title = "Estimated cost per night by model"
    if usage.empty:
        return _empty(title)
    colors = color_map(usage["model"])
    fig = go.Figure(
        [
            go.Bar(
                x=group["night"],
                y=group["estimated_cost_usd"],
                name=str(model),
                marker_color=colors[str(model)],
                customdata=group["tokens"],
                hovertemplate="%{x|%Y-%m-%d}: $%{y:.4f}, %{customdata:,} tokens"
                "<extra>%{fullData.name}</extra>",
            )
            for model, group in usage.groupby("model", sort=True)
        ]
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(tickprefix="$")
    return _layout(
        fig, title, "Night", "Estimated cost (USD)", nights=usage["night"], legend="Model"
    )


def tokens_over_time_by_model(usage: pd.DataFrame) -> go.Figure:
    """Tokens per night per model."""
    title = "Tokens per night by model"
    if usage.empty:
        return _empty(title)
    colors = color_map(usage["model"])
    fig = go.Figure(
        [
            go.Scatter(
                x=group["night"],
                y=group["tokens"],
                name=str(model),
                mode="lines+markers",
                line={"color": colors[str(model)]},
                customdata=group["calls"],
                hovertemplate="%{x|%Y-%m-%d}: %{y:,} tokens in %{customdata:,} calls"
                "<extra>%{fullData.name}</extra>",
            )
            for model, group in usage.groupby("model", sort=True)
        ]
    )
    return _layout(fig, title, "Night", "Tokens", nights=usage["night"], legend="Model")


def top_models_by_cost(models: pd.DataFrame) -> go.Figure:
    """Models ranked by estimated cost over the selection."""
    title = "Top models by estimated cost"
    if models.empty:
        return _empty(title)
    ranked = models.sort_values("estimated_cost_usd")
    colors = color_map(models["model"])
    fig = go.Figure(
        go.Bar(
            x=ranked["estimated_cost_usd"],
            y=ranked["model"],
            orientation="h",
            marker_color=[colors[m] for m in ranked["model"]],
            customdata=list(zip(ranked["tokens"], ranked["calls"], strict=True)),
            hovertemplate="%{y}: $%{x:.4f}<br>%{customdata[0]:,} tokens, %{customdata[1]:,} calls"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(tickprefix="$")
    return _layout(fig, title, "Estimated cost (USD)", "Model")


def cost_per_successful_record(rtn: pd.DataFrame) -> go.Figure:
    """Estimated cost per successful record per record type per night."""
    title = "Estimated cost per successful record"
    data = rtn.dropna(subset=["estimated_cost_per_success_usd"]) if not rtn.empty else rtn
    if data.empty:
        return _empty(title)
    colors = color_map(data["record_type"])
    fig = go.Figure(
        [
            go.Scatter(
                x=group["night"],
                y=group["estimated_cost_per_success_usd"],
                name=str(rt),
                mode="lines+markers",
                line={"color": colors[str(rt)]},
                customdata=list(zip(group["estimated_cost_usd"], group["succeeded"], strict=True)),
                hovertemplate="%{x|%Y-%m-%d}: $%{y:.5f} per success<br>$%{customdata[0]:.4f}"
                " over %{customdata[1]:,} successes<extra>%{fullData.name}</extra>",
            )
            for rt, group in data.groupby("record_type", sort=True)
        ]
    )
    fig.update_yaxes(tickprefix="$")
    return _layout(
        fig,
        title,
        "Night",
        "Cost per successful record (USD)",
        nights=data["night"],
        legend="Record type",
    )


def freshness_figure(fresh: pd.DataFrame) -> go.Figure:
    """Rows landed per nightly run, with when the night last landed in the hover."""
    title = "Data freshness: rows landed per night"
    if fresh.empty:
        return _empty(title)
    fig = go.Figure(
        [
            go.Bar(
                x=fresh["night"],
                y=fresh["step_rows"],
                name="step results",
                marker_color="#3182bd",
                customdata=list(
                    zip(
                        fresh["records"],
                        fresh["batches"],
                        fresh["last_landed_at"].astype(str),
                        strict=True,
                    )
                ),
                hovertemplate="%{x|%Y-%m-%d}: %{y:,} step results, %{customdata[0]:,} records in "
                "%{customdata[1]} batches<br>landed %{customdata[2]}<extra></extra>",
            ),
        ]
    )
    last = fresh["night"].max()
    fig.add_annotation(
        text=f"latest night {pd.Timestamp(last).date()}",
        x=last,
        y=fresh["step_rows"].max(),
        showarrow=True,
        arrowhead=2,
    )
    return _layout(fig, title, "Night", "Step results landed", nights=fresh["night"])


#: Every builder, by the name the report and tests use.
BUILDERS = {
    "kpis": kpi_figure,
    "success_rate": success_rate_over_time,
    "outcomes": outcomes_over_time,
    "flow_versions": flow_version_comparison,
    "latency_percentiles": latency_percentiles_over_time,
    "latency_distribution": latency_distribution,
    "batch_timing": batch_timing_over_time,
    "step_durations": step_durations,
    "latency_by_model": latency_by_model,
    "error_pareto": error_pareto,
    "error_classes": error_classes_over_time,
    "failure_heatmap": failure_heatmap,
    "cost_by_model": cost_over_time_by_model,
    "cost_per_step": cost_per_step,
    "model_latency_nights": model_latency_over_time,
    "tokens_by_model": tokens_over_time_by_model,
    "top_models": top_models_by_cost,
    "cost_per_success": cost_per_successful_record,
    "freshness": freshness_figure,
    "quality_verdicts": quality_verdicts_over_time,
}

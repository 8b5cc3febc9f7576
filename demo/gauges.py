"""Plotly figures of the app: one gauge per head on the shared [-3, 3] scale, and the per-sentence timeline.

Plotly figures render offline in gr.Plot (plotly.js ships with Gradio). A missing head gets an empty gauge
that says why instead of a needle at 0; an uncalibrated head is drawn in grey with its number.
"""
from __future__ import annotations

import plotly.graph_objects as go

from demo.disagreement import CHANNELS, NEUTRAL, SCALE
from selfmm.contract import HEADS

HEAD_TITLES = {"M": "M: fused", "T": "T: text", "A": "A: audio", "V": "V: vision"}
HEAD_COLORS = {"M": "#4b3fd6", "T": "#1f77b4", "A": "#d62728", "V": "#2ca02c"}
BANDS = {"negative": "#f6c9c4", "neutral": "#e8e8e8", "positive": "#c8e8cc"}
GREY_BANDS = {"negative": "#efefef", "neutral": "#f6f6f6", "positive": "#efefef"}


def _layout(fig: go.Figure, height: int = 230) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=25, r=25, t=55, b=10), paper_bgcolor="white",
                      font=dict(family="sans-serif"))
    return fig


def gauge(head: str, score: float | None, state: str = "ok", note: str = "") -> go.Figure:
    """The gauge of one head. state: 'ok', 'uncalibrated' (greyed, number kept) or 'missing' (no number)."""
    lo, hi = SCALE
    grey = state != "ok"
    bands = GREY_BANDS if grey else BANDS
    steps = [dict(range=[lo, -NEUTRAL], color=bands["negative"]),
             dict(range=[-NEUTRAL, NEUTRAL], color=bands["neutral"]),
             dict(range=[NEUTRAL, hi], color=bands["positive"])]
    title = HEAD_TITLES[head]
    if state == "uncalibrated":
        title += " <span style='color:#888'>(uncalibrated)</span>"
    elif state == "missing":
        title += " <span style='color:#888'>(missing)</span>"
    sub = note or {"ok": CHANNELS[head], "uncalibrated": "not trained on real data; not used in M",
                   "missing": "no input"}[state]
    color = "#9a9a9a" if grey else HEAD_COLORS[head]
    show_number = score is not None and state != "missing"
    value = round(float(score), 2) if show_number else 0.0
    # The scale is bipolar, so no bar filling up from -3: the coloured bands say the polarity and a needle
    # (the threshold line) marks the score.
    fig = go.Figure(go.Indicator(
        mode="gauge+number" if show_number else "gauge",
        value=value,
        number=dict(valueformat="+.2f", font=dict(size=30, color=color if grey else "#222")),
        title=dict(text=f"{title}<br><span style='font-size:0.75em;color:#666'>{sub}</span>", font=dict(size=15)),
        gauge=dict(axis=dict(range=[lo, hi], tickvals=[-3, -2, -1, 0, 1, 2, 3]),
                   bar=dict(color="rgba(0,0,0,0)", thickness=0),
                   steps=steps, borderwidth=1, bordercolor="#ccc",
                   threshold=dict(line=dict(color=color, width=6), thickness=1.0, value=value)
                   if show_number else None),
        domain=dict(x=[0, 1], y=[0, 1])))
    if state == "missing":
        fig.add_annotation(text="missing", x=0.5, y=0.12, showarrow=False, font=dict(size=22, color="#999"))
    return _layout(fig)


def timeline(segments: list[dict], title: str = "Per sentence", at_end: bool = False) -> go.Figure | None:
    """M/T/A/V per sentence over time (one point at each segment's middle, or its end: live windows); None for
    fewer than two segments."""
    if len(segments) < 2:
        return None
    fig = go.Figure()
    x = [s["end"] if at_end else (s["start"] + s["end"]) / 2 for s in segments]
    texts = [s["text"] for s in segments]
    for head in HEADS:
        ys = [s["scores"].get(head) for s in segments]
        if all(y is None for y in ys):
            continue
        fig.add_trace(go.Scatter(x=x, y=ys, mode="lines+markers", name=HEAD_TITLES[head],
                                 line=dict(color=HEAD_COLORS[head], width=3 if head == "M" else 2),
                                 text=texts, hovertemplate="%{text}<br>%{y:+.2f}<extra>" + head + "</extra>"))
    fig.add_hrect(y0=-NEUTRAL, y1=NEUTRAL, fillcolor="#e8e8e8", opacity=0.5, line_width=0)
    fig.update_yaxes(range=[SCALE[0] - 0.1, SCALE[1] + 0.1], title="score", zeroline=True)
    fig.update_xaxes(title="time (s)")
    fig.update_layout(title=title, legend=dict(orientation="h", y=-0.25))
    return _layout(fig, height=320)

"""The demo's picture: every upstream request of both runs of each job, on one time axis
(``.demo/timeline.html``, a self-contained SVG page)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from demo import Compared, Run

__all__ = ["COLORS", "write_timeline"]

COLORS = {200: "#3b7dd8", 429: "#e8871e", 503: "#c0392b", 500: "#7f1d1d", 404: "#888"}


def _panel(run: Run, label: str, order: dict[str, int], span: float, width: int, row_h: float, top: int) -> list[str]:
    parts = [f'<text x="4" y="{top - 4}" font-size="12">{html.escape(label)}</text>']
    if not run.timeline:
        return parts
    t0 = min(r["start"] for r in run.timeline)
    scale_x = (width - 10) / span
    for r in run.timeline:
        key = f"{r['endpoint']}/{r['key']}"
        y = top + order.setdefault(key, len(order)) * row_h
        x = 5 + (r["start"] - t0) * scale_x
        w = max((r["end"] - r["start"]) * scale_x, 1.0)
        color = COLORS.get(r["status"], "#555")
        title = f"{key} {r['status']} {r['start'] - t0:.3f}-{r['end'] - t0:.3f}s"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{max(row_h - 0.5, 0.8):.1f}" fill="{color}">'
            f"<title>{html.escape(title)}</title></rect>"
        )
    return parts


def write_timeline(results: list[Compared], path: Path) -> Path:
    """One SVG per job: every request of the sequential run above, of the accelerated run below,
    on the same time axis (one row per request key, in the order the sequential run made them)."""
    width = 960
    sections = []
    for c in results:
        runs = [r for r in (c.off, c.on) if r.timeline]
        if not runs:
            continue
        span = max(max(x["end"] for x in r.timeline) - min(x["start"] for x in r.timeline) for r in runs) or 1.0
        order: dict[str, int] = {}
        for r in sorted(c.off.timeline, key=lambda r: r["start"]):
            order.setdefault(f"{r['endpoint']}/{r['key']}", len(order))
        keys = len({f"{r['endpoint']}/{r['key']}" for run in runs for r in run.timeline} | set(order))
        row_h = max(min(240 / max(keys, 1), 6.0), 1.5)
        panel_h = int(keys * row_h) + 24
        body = _panel(c.off, f"sequential: {c.off.seconds:.2f} s", order, span, width, row_h, 20)
        body += _panel(c.on, f"accelerated: {c.on.seconds:.2f} s", order, span, width, row_h, 20 + panel_h)
        ticks = max(span / 10, 0.01)
        tick = 10 ** math.floor(math.log10(ticks))
        tick = next(t * tick for t in (1, 2, 5, 10) if t * tick >= ticks)
        axis_y = 20 + 2 * panel_h
        for i in range(int(span / tick) + 1):
            x = 5 + i * tick * (width - 10) / span
            body.append(f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd" stroke-width="0.5"/>')
            body.append(f'<text x="{x:.1f}" y="{axis_y + 12}" font-size="10" text-anchor="middle">{i * tick:g}s</text>')
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{axis_y + 20}" font-family="sans-serif">'
            + "".join(body)
            + "</svg>"
        )
        sections.append(
            f"<h2>{html.escape(c.job.name)}: {c.job.items} items, concurrency {c.limits.concurrency}</h2>\n{svg}"
        )
    legend = " ".join(
        f'<span style="background:{color};color:white;padding:1px 6px">{status}</span>'
        for status, color in COLORS.items()
    )
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>sched_accel demo: request timeline</title>"
        "<body style='font-family:sans-serif'><h1>Every upstream request, sequential and accelerated</h1>"
        f"<p>One row per request (endpoint/key), one bar from its start to its end at the upstream. {legend}</p>"
        + "\n".join(sections)
        + "</body>",
        encoding="utf-8",
    )
    return path

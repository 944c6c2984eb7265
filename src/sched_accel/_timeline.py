"""``sched-accel timeline``: a target's last runs as one self-contained HTML page.

For each target with a recorded run, one picture on one time axis: the requests of its last
run made one request at a time (a run at ``concurrency = 1``, or stepped aside: kept in its
runs file until another replaces it) above, the requests of its last run below, one bar per
request from when it was sent to when it was answered, coloured by its status, and the
length of the last unaccelerated run (``outcome=off``, the baseline of ``speedup``) as a grey
bar over the axis. What the demo draws for its own jobs, for the app's.

The page has no external resource (no script, font or style from elsewhere): it opens from a
file on a machine with no network. Everything it shows from a runs file is escaped, and a
figure that is not a number is left out: a runs file is data, never markup.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

__all__ = ["page"]

WIDTH = 960
_COLOURS = (("2", "#3b7dd8"), ("3", "#6aa84f"), ("4", "#888888"), ("5", "#c0392b"))
_REFUSED = "#e8871e"  # 429, and 503
_ERROR = "#4a235a"  # the request raised (a timeout, a reset connection)
_LEGEND = (
    ("2xx", "#3b7dd8"),
    ("429 / 503", _REFUSED),
    ("other 4xx", "#888888"),
    ("5xx", "#c0392b"),
    ("raised", _ERROR),
    ("last unaccelerated run", "#bbbbbb"),
)


def _number(value: Any) -> float | None:
    """A finite, non-negative number from a runs file, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _spans(kept: Any) -> list[tuple[float, float, str, str, Any]]:
    """The well-formed spans of a kept timeline: (start, took, host, who, status)."""
    spans = kept.get("spans") if isinstance(kept, dict) else None
    found = []
    for span in spans if isinstance(spans, list) else []:
        if not isinstance(span, list) or len(span) != 5:
            continue
        start, took = _number(span[0]), _number(span[1])
        if start is None or took is None:
            continue
        found.append((start, took, str(span[2]), "live" if span[3] == "live" else "ahead", span[4]))
    return sorted(found, key=lambda span: span[0])


def _colour(status: Any) -> str:
    if isinstance(status, int) and not isinstance(status, bool):
        if status in (429, 503):
            return _REFUSED
        return next((colour for first, colour in _COLOURS if str(status).startswith(first)), "#555555")
    return _ERROR if status is not None else "#555555"


def _panel(
    label: str, spans: list[tuple[float, float, str, str, Any]], span: float, top: float, height: float
) -> list[str]:
    parts = [f'<text x="4" y="{top - 5:.1f}" font-size="12">{html.escape(label)}</text>']
    if not spans:
        parts.append(f'<text x="14" y="{top + 14:.1f}" font-size="11" fill="#777">no request recorded</text>')
        return parts
    row = max(min(height / len(spans), 8.0), 0.3)
    scale = (WIDTH - 10) / span
    for index, (start, took, host, who, status) in enumerate(spans):
        x, y = 5 + start * scale, top + index * row
        title = f"{host} {status if status is not None else '?'} ({who}) {start:.3f}-{start + took:.3f} s"
        parts.append(
            f'<rect class="request" x="{x:.1f}" y="{y:.2f}" width="{max(took * scale, 1.0):.1f}" '
            f'height="{max(row - 0.3, 0.3):.2f}" fill="{_colour(status)}"><title>{html.escape(title)}</title></rect>'
        )
    return parts


def _axis(span: float, y: float) -> list[str]:
    step = 10 ** math.floor(math.log10(max(span / 10, 1e-3)))
    step = next(m * step for m in (1, 2, 5, 10) if m * step >= span / 10)
    parts = [f'<line x1="5" y1="{y:.1f}" x2="{WIDTH - 5}" y2="{y:.1f}" stroke="#333"/>']
    tick = 0.0
    while tick <= span + 1e-9:
        x = 5 + tick * (WIDTH - 10) / span
        parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" stroke="#333"/>')
        anchor = "start" if tick == 0 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{y + 16:.1f}" font-size="10" text-anchor="{anchor}">{tick:g} s</text>')
        tick += step
    return parts


def _height(spans: list[Any]) -> float:
    """A panel's height: 8 px a request, up to 240 (then thinner bars)."""
    return float(min(max(len(spans), 1) * 8, 240))


def _when(finished: Any) -> str:
    stamp = _number(finished)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp is not None else "unknown time"


def _section(target: str, record: dict[str, Any]) -> str:
    run = record.get("run") if isinstance(record.get("run"), dict) else {}
    assert isinstance(run, dict)
    last, sequential = _spans(record.get("timeline")), _spans(record.get("sequential"))
    plain = record.get("plain") if isinstance(record.get("plain"), dict) else None
    baseline = _number(plain.get("seconds")) if plain else None
    seconds = _number(run.get("seconds"))
    ends = [start + took for start, took, *_ in last + sequential]
    span = max([*ends, baseline or 0.0, seconds or 0.0, 1e-3])
    top = 40.0 if baseline is not None else 20.0
    body: list[str] = []
    if baseline is not None:
        body.append(
            f'<rect class="baseline" x="5" y="4" width="{baseline * (WIDTH - 10) / span:.1f}" height="8" fill="#bbbbbb">'
            f"<title>last unaccelerated run: {baseline:g} s</title></rect>"
            f'<text x="8" y="24" font-size="11" fill="#555">last unaccelerated run ({_when(plain.get("finished") if plain else None)}): '
            f"{baseline:g} s</text>"
        )
    seq_kept = record.get("sequential") if isinstance(record.get("sequential"), dict) else {}
    assert isinstance(seq_kept, dict)
    if sequential:
        height = _height(sequential)
        body += _panel(
            f"one request at a time ({_when(seq_kept.get('finished'))}): {len(sequential)} requests",
            sequential,
            span,
            top + 6,
            height,
        )
        top += height + 36
    label = f"last run ({_when(record.get('finished'))}): outcome={run.get('outcome')}, {seconds if seconds is not None else '?'} s"
    speedup = _number(run.get("speedup"))
    if speedup is not None:
        label += f", speedup {speedup:g}x"
    effective = _number(run.get("effective_concurrency"))
    if effective is not None:
        label += f", effective concurrency {effective:g}"
    height = _height(last)
    body += _panel(label + f": {len(last)} requests", last, span, top + 6, height)
    top += height + 16
    body += _axis(span, top)
    dropped = sum(
        int(k.get("dropped", 0))
        for k in (record.get("timeline"), seq_kept)
        if isinstance(k, dict) and isinstance(k.get("dropped"), int)
    )
    note = f"<p>{dropped} more requests were not recorded (a run keeps its first 2,000).</p>" if dropped else ""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{top + 24:.0f}" '
        f'font-family="sans-serif">{"".join(body)}</svg>'
    )
    return f"<section><h2>{html.escape(target)}</h2>{svg}{note}</section>"


def page(records: dict[str, dict[str, Any]], *, title: str) -> str:
    """The HTML page of ``records`` (``_state.load_runs``'s, by target name)."""
    legend = " ".join(
        f'<span><span style="display:inline-block;width:10px;height:10px;background:{colour}"></span> {name}</span>'
        for name, colour in _LEGEND
    )
    sections = "".join(_section(target, record) for target, record in sorted(records.items()))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:16px}h2{font-size:15px;margin:18px 0 4px}</style></head><body>"
        f'<h1 style="font-size:18px">{html.escape(title)}</h1><p>{legend}</p>'
        "<p>One bar per request, from when it was sent to when it was answered; requests in the order they were "
        "sent, top to bottom.</p>"
        f"{sections}</body></html>\n"
    )

"""Small inline-SVG charts for the HTML report: bars (grouped or stacked, with interval whiskers)
and lines (log scale). Our own code rather than a plotting library: the page runs under a CSP
that forbids scripts and inline style attributes, every label is escaped here, and the four
charts the report needs fit in this file. Only presentation attributes are used (fill, stroke,
font-size); each mark carries a <title> with its exact value (the browser's tooltip)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from adapterscan.render.text import visible

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 58
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str
    # (low, high) per value, drawn as a whisker; None where there is no interval
    intervals: Sequence[tuple[float, float] | None] = ()


def escaped(text: object) -> str:
    """Text made visible (control characters shown) and escaped for HTML and SVG."""
    return escape(visible(str(text)), quote=True)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _short(label: str, limit: int = 16) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def _frame(title: str, desc: str, body: list[str], legend: Sequence[Series]) -> str:
    items = []
    x = LEFT
    for s in legend:
        items.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{escaped(s.color)}"/>'
                     f'<text x="{x + 14}" y="17" font-size="11" {FONT}>{escaped(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escaped(title)}">'
            f"<title>{escaped(title)}</title><desc>{escaped(desc)}</desc>"
            + "".join(items) + "".join(body) + "</svg>")


def _y_axis(top: float, label: str, *, percent: bool, log: bool = False,
            bottom: float = 0.0) -> tuple[list[str], float, float]:
    """Grid lines and tick labels; returns them with the plot's y range."""
    h = HEIGHT - TOP - BOTTOM
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + h}" stroke="#555"/>',
           f'<text x="12" y="{TOP + h / 2}" font-size="11" {FONT} transform="rotate(-90 12 '
           f'{TOP + h / 2})" text-anchor="middle">{escaped(label)}</text>']
    if log:
        lo, hi = math.floor(math.log10(bottom)), math.ceil(math.log10(top))
        ticks = [10.0 ** k for k in range(lo, hi + 1)]
        span: tuple[float, float] = (float(lo), float(hi))
    else:
        ticks = [top * i / 4 for i in range(5)]
        span = (0.0, top)
    for t in ticks:
        y = _y(t, span, log)
        text = f"{t:.0%}" if percent else (f"{t:g}" if log else _num(t))
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                   f'stroke="#ddd"/><text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" {FONT} '
                   f'text-anchor="end">{escaped(text)}</text>')
    return out, span[0], span[1]


def _y(value: float, span: tuple[float, float], log: bool) -> float:
    h = HEIGHT - TOP - BOTTOM
    if log:
        lo, hi = span
        frac = (math.log10(max(value, 10.0 ** lo)) - lo) / max(hi - lo, 1e-9)
    else:
        frac = value / span[1] if span[1] > 0 else 0.0
    return TOP + h * (1.0 - min(max(frac, 0.0), 1.0))


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series], *,
              y_label: str, percent: bool = False, stacked: bool = False,
              y_max: float | None = None, desc: str = "") -> str:
    """Bars per category: side by side (grouped) or on top of each other (stacked)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    highs = [hi for s in series for iv in s.intervals if iv is not None for hi in iv[1:]]
    top = y_max if y_max is not None else max([*(totals if stacked else
                                                 [v for s in series for v in s.values]),
                                               *highs, 1e-12]) * 1.1
    body, _, _ = _y_axis(top, y_label, percent=percent)
    span = (0.0, top)
    slot = (WIDTH - LEFT - RIGHT) / max(len(categories), 1)
    groups = 1 if stacked else max(len(series), 1)
    bar_w = slot * 0.7 / groups
    stagger = any(len(c) * 6 > slot for c in categories)
    limit = max(6, int(slot * (2 if stagger else 1) / 6.2) - 1)
    for i, cat in enumerate(categories):
        x0 = LEFT + slot * i + slot * 0.15
        below = 0.0
        for j, s in enumerate(series):
            v = s.values[i]
            x = x0 if stacked else x0 + j * bar_w
            y_top = _y(below + v, span, False)
            y_bot = _y(below, span, False)
            shown = f"{v:.1%}" if percent else f"{v:.4g}"
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                        f'height="{max(y_bot - y_top, 0.0):.1f}" fill="{escaped(s.color)}">'
                        f"<title>{escaped(cat)} — {escaped(s.name)}: {escaped(shown)}"
                        "</title></rect>")
            iv = s.intervals[i] if i < len(s.intervals) else None
            if iv is not None and not stacked:
                cx = x + bar_w / 2
                y1, y2 = _y(iv[0], span, False), _y(iv[1], span, False)
                body.append(f'<path d="M{cx:.1f} {y1:.1f}V{y2:.1f}M{cx - 3:.1f} {y1:.1f}'
                            f'h6M{cx - 3:.1f} {y2:.1f}h6" stroke="#222" fill="none">'
                            f"<title>{escaped(s.name)} 95% interval: {iv[0]:.1%}–{iv[1]:.1%}"
                            "</title></path>")
            if stacked:
                below += v
        # Labels fit their slot (about 6 px a character); crowded ones alternate two rows.
        row = 12 * (i % 2) if stagger else 0
        body.append(f'<text x="{LEFT + slot * (i + 0.5):.1f}" y="{HEIGHT - BOTTOM + 14 + row}" '
                    f'font-size="10" {FONT} text-anchor="middle">{escaped(_short(cat, limit))}'
                    f"<title>{escaped(cat)}</title></text>")
    return _frame(title, desc or title, body, series)


def line_chart(title: str, series: Sequence[Series], *, x_label: str, y_label: str,
               desc: str = "") -> str:
    """One polyline per series over its index (1, 2, ...), y on a log scale."""
    values = [v for s in series for v in s.values if v > 0]
    hi = max(values, default=1.0)
    lo = max(min(values, default=hi / 10), hi * 1e-6)
    body, lo_exp, hi_exp = _y_axis(hi, y_label, percent=False, log=True, bottom=lo)
    span = (lo_exp, hi_exp)
    n = max((len(s.values) for s in series), default=1)
    step = (WIDTH - LEFT - RIGHT) / max(n - 1, 1)
    for k in range(n):
        body.append(f'<text x="{LEFT + step * k:.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10" '
                    f'{FONT} text-anchor="middle">{k + 1}</text>')
    body.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - BOTTOM + 30}" '
                f'font-size="11" {FONT} text-anchor="middle">{escaped(x_label)}</text>')
    for s in series:
        pts = [(LEFT + step * k, _y(v, span, True)) for k, v in enumerate(s.values) if v > 0]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        body.append(f'<polyline class="line" points="{path}" fill="none" '
                    f'stroke="{escaped(s.color)}" stroke-width="2"><title>{escaped(s.name)}</title>'
                    "</polyline>")
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{escaped(s.color)}"><title>'
                 f"{escaped(s.name)} σ{k + 1} = {v:.4g}</title></circle>"
                 for k, ((x, y), v) in enumerate(zip(pts, [v for v in s.values if v > 0],
                                                     strict=True))]
    return _frame(title, desc or title, body, [])

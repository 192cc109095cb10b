"""Small inline-SVG charts for the HTML report: no chart library, no script, nothing fetched.

The functions take plain labels and floats (a chart only draws money, it never adds it up) and return an ``<svg>``
element for an HTML5 document. Every label is escaped here, whatever its origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from costbrake.formatting import DASH, percent, usd

TOTAL_COLOR = "#3b6ea5"  # cost bars, spent part of a budget
BUDGET_COLOR = "#d62728"  # budget lines and markers
PROJECTION_COLOR = "#ff7f0e"  # run-rate line
PROJECTED_FILL = "#ffbb78"  # projected part of a budget
USER_COLOR = "#2a9d8f"
FEATURE_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")
OTHER_COLOR = "#bab0ac"
TRACK_COLOR = "#f0f0f0"
GRID_COLOR = "#e3e3e3"
TEXT_COLOR = "#444444"

FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"  # local fonts only
CHAR_WIDTH = 7  # rough width of a 12 px character, to lay out legends and labels
MAX_X_LABELS = 16
MAX_LEGEND_CHARS = 60


@dataclass(frozen=True)
class Stack:
    """One series of a column chart; several are stacked bottom-up in order."""

    name: str
    color: str
    values: Sequence[float]


@dataclass(frozen=True)
class Rule:
    """A horizontal line across a column chart (a budget, a run rate)."""

    name: str
    color: str
    value: float
    dash: str = "8 4"


@dataclass(frozen=True)
class BulletRow:
    label: str
    spent: float
    projected: float
    budget: float


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 4, 6 or 8 x 10^k at or above ``value``: an axis top whose quarters are round."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 4, 6, 8, 10) if m * magnitude >= value * (1 - 1e-12))


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{escape(FONT)}" font-size="12" fill="{TEXT_COLOR}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _rect(x: float, y: float, width: float, height: float, color: str, tip: str = "") -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'fill="{color}">{title}</rect>'
    )


def _clip(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _name(label: str, right: float, y: float, room: float) -> str:
    """A right-aligned row name ending at ``right``, cut to fit ``room`` pixels; the full name is its tooltip."""
    shown = _clip(label, max(int(room // CHAR_WIDTH), 4))
    return f'<text x="{right:.1f}" y="{y:.1f}" text-anchor="end">{escape(shown)}<title>{escape(label)}</title></text>'


def _legend(items: Sequence[tuple[str, str, bool]], x0: float, y0: float, width: float) -> tuple[list[str], int]:
    """Swatches (a square, or a line for rules) and names, wrapped to ``width``; returns the parts and the height."""
    parts: list[str] = []
    x, y = x0, y0
    for name, color, is_line in items:
        shown = _clip(name, MAX_LEGEND_CHARS)
        item_width = 22 + CHAR_WIDTH * len(shown) + 18
        if x > x0 and x + item_width > x0 + width:
            x, y = x0, y + 20
        if is_line:
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + 6:.1f}" x2="{x + 16:.1f}" y2="{y + 6:.1f}" stroke="{color}" '
                'stroke-width="3" stroke-dasharray="5 3"/>'
            )
        else:
            parts.append(_rect(x, y, 12, 12, color))
        parts.append(_text(x + 22, y + 11, shown))
        x += item_width
    return parts, round(y - y0) + 20 if items else 0


def column_chart(
    title: str,
    labels: Sequence[str],
    stacks: Sequence[Stack],
    rules: Sequence[Rule] = (),
    ticks: Sequence[str] | None = None,
    width: int = 1100,
    height: int = 300,
) -> str:
    """Columns (stacked when several series) over ``labels``, with horizontal rules, a y axis in dollars, a legend.

    ``ticks`` are the x-axis texts, "" for none (default: every n-th label, at most MAX_X_LABELS); ``labels`` name
    the columns in their tooltips.
    """
    left, right, top, bottom = 72, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(labels)
    heights = [sum(stack.values[n] for stack in stacks) for n in range(count)]
    top_value = nice_ceiling(max([*heights, *(rule.value for rule in rules), 0.0]) * 1.05)

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    body: list[str] = []
    for tick in range(5):
        value = top_value * tick / 4
        y = y_of(value)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID_COLOR}" '
            'shape-rendering="crispEdges"/>'
        )
        body.append(_text(left - 8, y + 4, usd(value, places=2, whole_from=10), "end"))
    slot = plot_w / max(count, 1)
    bar = max(slot * 0.72, 1.0)
    step = max(1, math.ceil(count / MAX_X_LABELS))
    shown = list(ticks) if ticks is not None else [label if n % step == 0 else "" for n, label in enumerate(labels)]
    for n, label in enumerate(labels):
        x = left + n * slot + (slot - bar) / 2
        base = 0.0
        for stack in stacks:
            value = stack.values[n]
            if value > 0:
                body.append(
                    _rect(
                        x,
                        y_of(base + value),
                        bar,
                        y_of(base) - y_of(base + value),
                        stack.color,
                        f"{label} {stack.name}: {usd(value, places=4)}",
                    )
                )
            base += value
        if shown[n]:
            body.append(_text(left + n * slot + slot / 2, top + plot_h + 18, shown[n], "middle"))
    for rule in rules:
        y = y_of(rule.value)
        body.append(
            f'<line class="rule" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{rule.color}" '
            f'stroke-width="3" stroke-dasharray="{rule.dash}" shape-rendering="crispEdges">'
            f"<title>{escape(rule.name)}</title></line>"
        )
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{TEXT_COLOR}" '
        'shape-rendering="crispEdges"/>'
    )
    legend_items = [(s.name, s.color, False) for s in stacks if len(stacks) > 1]
    legend_items += [(r.name, r.color, True) for r in rules]
    legend, legend_h = _legend(legend_items, left, height + 4, plot_w)
    return _svg(width, height + legend_h + (8 if legend_h else 0), title, body + legend)


def bar_list(title: str, rows: Sequence[tuple[str, float, str]], color: str = USER_COLOR, width: int = 1100) -> str:
    """Horizontal bars, one per (label, value, note) row, longest first as given; the note is printed after it."""
    label_w, note_w, row_h = 230, 200, 26
    plot_w = width - label_w - note_w
    largest = max([value for _, value, _ in rows] + [0.0]) or 1.0
    body: list[str] = []
    for n, (label, value, note) in enumerate(rows):
        y = 6 + n * row_h
        length = plot_w * value / largest
        body.append(_name(label, label_w - 10, y + 15, label_w - 14))
        body.append(_rect(label_w, y + 2, length, row_h - 8, color, f"{label}: {usd(value, places=4)}"))
        body.append(_text(label_w + length + 8, y + 15, note))
    return _svg(width, 12 + len(rows) * row_h, title, body)


def budget_bullets(title: str, rows: Sequence[BulletRow], width: int = 1100) -> str:
    """Per budget: the month's spend, its projected end (lighter) and the budget (a red marker)."""
    label_w, note_w, row_h = 170, 260, 34
    plot_w = width - label_w - note_w
    scale = max([max(r.spent, r.projected, r.budget) for r in rows] + [0.0]) * 1.05 or 1.0
    body: list[str] = []
    for n, row in enumerate(rows):
        y = 8 + n * row_h
        body.append(_name(row.label, label_w - 10, y + 17, label_w - 14))
        body.append(_rect(label_w, y + 4, plot_w, row_h - 12, TRACK_COLOR))
        body.append(
            _rect(
                label_w,
                y + 4,
                plot_w * row.projected / scale,
                row_h - 12,
                PROJECTED_FILL,
                f"{row.label} projected month: {usd(row.projected, places=4)}",
            )
        )
        body.append(
            _rect(
                label_w,
                y + 8,
                plot_w * row.spent / scale,
                row_h - 20,
                TOTAL_COLOR,
                f"{row.label} spent this month: {usd(row.spent, places=4)}",
            )
        )
        marker = label_w + plot_w * row.budget / scale
        body.append(
            f'<line x1="{marker:.1f}" y1="{y}" x2="{marker:.1f}" y2="{y + row_h - 4}" stroke="{BUDGET_COLOR}" '
            f'stroke-width="3" shape-rendering="crispEdges"><title>{escape(row.label)} budget: '
            f"{escape(usd(row.budget, places=4))}</title></line>"
        )
        used = percent(row.spent / row.budget, places=0) if row.budget else DASH
        projected = percent(row.projected / row.budget, places=0) if row.budget else DASH
        body.append(
            _text(label_w + plot_w + 12, y + 17, f"{used} spent, {projected} projected of {usd(row.budget, places=4)}")
        )
    legend, legend_h = _legend(
        [
            ("spent", TOTAL_COLOR, False),
            ("projected by month end", PROJECTED_FILL, False),
            ("budget", BUDGET_COLOR, True),
        ],
        label_w,
        12 + len(rows) * row_h,
        plot_w,
    )
    return _svg(width, 16 + len(rows) * row_h + legend_h, title, body + legend)

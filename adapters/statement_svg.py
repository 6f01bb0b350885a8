"""Line charts as inline SVG, drawn in Python: the statement needs no script, font or URL to show its curves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 110, 20, 16, 34  # margins for the axis labels


def line_chart(points: Sequence[tuple[datetime, Decimal]], *, title: str, unit: str, chart_id: str,
               colour: str = "#1f4e79", fill: bool = False) -> str:
    """One series against time: the polyline, the value range on the left and the time range below."""
    if not points:
        return f'<p class="empty" id="{escape(chart_id)}">{escape(title)}: no data</p>'
    times = [t.timestamp() for t, _ in points]
    values = [float(v) for _, v in points]
    t0, t1 = times[0], max(times[-1], times[0] + 1)
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * plot_h

    path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values))
    area = (f'<polygon points="{x(times[0]):.1f},{y(low):.1f} {path} {x(times[-1]):.1f},{y(low):.1f}" '
            f'fill="{colour}" fill-opacity="0.15" stroke="none"/>' if fill else "")
    label = escape(f"{title} ({unit})")
    return (
        f'<svg id="{escape(chart_id)}" class="chart" role="img" '
        f'aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}" data-points="{len(points)}">'
        f'<title>{label}</title>'
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999" stroke-width="0.5"/>'
        f'{area}<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.2"/>'
        f'{_text(LEFT - 6, TOP + 10, f"{high:.6g}", "end")}{_text(LEFT - 6, TOP + plot_h, f"{low:.6g}", "end")}'
        f'{_text(LEFT - 6, TOP + plot_h / 2, escape(unit), "end")}'
        f'{_text(LEFT, HEIGHT - 12, _day(points[0][0]), "start")}'
        f'{_text(WIDTH - RIGHT, HEIGHT - 12, _day(points[-1][0]), "end")}'
        "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11">{text}</text>'


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")

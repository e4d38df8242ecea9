"""The failure map's charts as server-rendered SVG (production.failmap), readable in black and
white: what failed is filled black, what passed is hollow, regions of high failure hatched.

Pure: values in, SVG text out (every text escaped). Each mark carries its numbers as data-*
attributes, so a test reads the chart as a user would see it.
"""

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from production.failmap import Axis, Point, Region

WIDTH = 520
LEFT, RIGHT, TOP = 44, 12, 22


def _num(value: float) -> str:
    return f"{value:.1f}"


def _label(value: float) -> str:
    return f"{round(value, 3):g}"


def _hatch(pattern_id: str) -> str:
    return (
        f'<defs><pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#888" '
        'stroke-width="2"/></pattern></defs>'
    )


class Scale:
    """A parameter's range mapped onto pixels."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        clamped = min(max(value, self.low), self.high)
        return self.start + (clamped - self.low) / span * (self.end - self.start)


def _edges(axis: Axis) -> list[float]:
    return [axis.bins[0].low, *(b.high for b in axis.bins)] if axis.bins else []


def _title(axis: Axis) -> str:
    unit = f" ({axis.unit})" if axis.unit else ""
    return f"{axis.label}{unit}"


def bins_svg(axis: Axis) -> SafeString:
    """One parameter's bins as bars: the copies that failed in black from the axis up, the
    ones that passed hollow above them; a high-failure bin hatched behind its bar."""
    height, bottom = 190, 44
    plot_h = height - TOP - bottom
    base = TOP + plot_h
    x = Scale(axis.low, axis.high, LEFT, WIDTH - RIGHT)
    most = max((b.tally.made for b in axis.bins), default=0) or 1
    hatch = f"hatch-{escape(axis.name)}"
    parts = [
        f'<svg class="failmap-bins" data-parameter="{escape(axis.name)}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">',
        f"<title>{escape(_title(axis))}: copies made per bin, failed in black</title>",
        _hatch(hatch),
    ]
    for item in axis.bins:
        left, right = x(item.low) + 1, x(item.high) - 1
        width = max(right - left, 1.0)
        tally = item.tally
        if item.high_failure:
            parts.append(
                f'<rect class="high-failure" x="{_num(left)}" y="{TOP}" width="{_num(width)}" '
                f'height="{plot_h}" fill="url(#{hatch})" stroke="#000" stroke-dasharray="4 2"/>'
            )
        bad_h = tally.bad / most * plot_h
        good_h = tally.passed / most * plot_h
        parts.append(
            f'<g class="bin" data-low="{_label(item.low)}" data-high="{_label(item.high)}" '
            f'data-made="{tally.made}" data-bad="{tally.bad}" '
            f'data-high-failure="{"yes" if item.high_failure else "no"}">'
            f"<title>{_label(item.low)} to {_label(item.high)}: {tally.bad} of {tally.made} "
            "failed</title>"
        )
        if tally.passed:
            parts.append(
                f'<rect x="{_num(left + 3)}" y="{_num(base - bad_h - good_h)}" '
                f'width="{_num(max(width - 6, 1))}" height="{_num(good_h)}" fill="#fff" '
                'stroke="#000"/>'
            )
        if tally.bad:
            parts.append(
                f'<rect x="{_num(left + 3)}" y="{_num(base - bad_h)}" '
                f'width="{_num(max(width - 6, 1))}" height="{_num(bad_h)}" fill="#000"/>'
            )
        if tally.made:
            parts.append(
                f'<text x="{_num((left + right) / 2)}" y="{_num(base - bad_h - good_h - 4)}" '
                f'text-anchor="middle">{tally.bad}/{tally.made}</text>'
            )
        parts.append("</g>")
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#000"/>')
    for edge in _edges(axis):
        parts.append(
            f'<text x="{_num(x(edge))}" y="{base + 14}" text-anchor="middle">{_label(edge)}</text>'
        )
    parts.append(
        f'<text x="{_num((LEFT + WIDTH - RIGHT) / 2)}" y="{height - 8}" text-anchor="middle">'
        f"{escape(_title(axis))} · failed/made per bin</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped)


def scatter_svg(
    x_axis: Axis, y_axis: Axis, points: Sequence[Point], regions: Sequence[Region]
) -> SafeString:
    """The configurations made, over the two parameters that tell most: a hollow ring sized
    by the copies made, filled black in proportion to those that failed (all passed: hollow;
    all failed: a black disc). The regions of high failure of either parameter hatched."""
    height, bottom = 400, 46
    x = Scale(x_axis.low, x_axis.high, LEFT + 6, WIDTH - RIGHT - 6)
    y = Scale(y_axis.low, y_axis.high, height - bottom - 6, TOP + 6)
    hatch = "hatch-scatter"
    parts = [
        f'<svg class="failmap-scatter" data-x="{escape(x_axis.name)}" '
        f'data-y="{escape(y_axis.name)}" role="img" viewBox="0 0 {WIDTH} {height}" '
        'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" '
        'font-size="11" font-family="sans-serif">',
        f"<title>{escape(_title(x_axis))} against {escape(_title(y_axis))}: hollow passed, "
        "black failed</title>",
        _hatch(hatch),
    ]
    for region in regions:
        box: tuple[float, float, float, float]
        if region.name == x_axis.name:
            left, right = x(region.low), x(region.high)
            box = (left, TOP, right - left, height - bottom - TOP)
        elif region.name == y_axis.name:
            top, low = y(region.high), y(region.low)
            box = (LEFT, top, WIDTH - RIGHT - LEFT, low - top)
        else:
            continue
        parts.append(
            f'<rect class="high-failure" data-parameter="{escape(region.name)}" '
            f'x="{_num(box[0])}" y="{_num(box[1])}" width="{_num(box[2])}" '
            f'height="{_num(box[3])}" fill="url(#{hatch})" fill-opacity="0.6"/>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - RIGHT - LEFT}" '
        f'height="{height - bottom - TOP}" fill="none" stroke="#000"/>'
    )
    # The bin edges as ticks, with light lines across: the bars' bins, read on the scatter.
    for value in _edges(x_axis):
        parts.append(
            f'<line x1="{_num(x(value))}" y1="{TOP}" x2="{_num(x(value))}" '
            f'y2="{height - bottom}" stroke="#bbb" stroke-dasharray="2 3"/>'
            f'<text x="{_num(x(value))}" y="{height - bottom + 14}" text-anchor="middle">'
            f"{_label(value)}</text>"
        )
    for value in _edges(y_axis):
        parts.append(
            f'<line x1="{LEFT}" y1="{_num(y(value))}" x2="{WIDTH - RIGHT}" '
            f'y2="{_num(y(value))}" stroke="#bbb" stroke-dasharray="2 3"/>'
            f'<text x="{LEFT - 4}" y="{_num(y(value) + 4)}" text-anchor="end">'
            f"{_label(value)}</text>"
        )
    most = max((p.tally.made for p in points), default=0) or 1
    for point in points:
        tally = point.tally
        ring = 3 + 7 * math.sqrt(tally.made / most)
        core = ring * math.sqrt(tally.rate)
        cx, cy = _num(x(point.x)), _num(y(point.y))
        parts.append(
            f'<g class="point" data-x="{_label(point.x)}" data-y="{_label(point.y)}" '
            f'data-made="{tally.made}" data-bad="{tally.bad}">'
            f"<title>{escape(x_axis.name)}={_label(point.x)}, {escape(y_axis.name)}="
            f"{_label(point.y)}: {tally.bad} of {tally.made} failed</title>"
            f'<circle cx="{cx}" cy="{cy}" r="{_num(ring)}" fill="#fff" stroke="#000"/>'
        )
        if tally.bad:
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="{_num(core)}" fill="#000"/>')
        parts.append("</g>")
    parts.append(
        f'<text x="{_num((LEFT + WIDTH - RIGHT) / 2)}" y="{height - 10}" text-anchor="middle">'
        f"{escape(_title(x_axis))} →</text>"
        f'<text x="12" y="{_num((TOP + height - bottom) / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 12 {_num((TOP + height - bottom) / 2)})">'
        f"{escape(_title(y_axis))} →</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped)

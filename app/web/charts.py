"""Charts drawn on the server as inline SVG: no script, no third-party code, scales to a phone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

BAR_WIDTH = 4
HEIGHT = 120
AXIS = 16  # room below the bars for the day labels
# Colours with enough contrast on white and told apart without colour too (the legend names them).
COLOURS = ("#2e7d32", "#c62828")


def stacked_hourly_bars(
    title: str, hours: Sequence[datetime], series: Sequence[tuple[str, Sequence[int]]]
) -> Markup:
    """One bar per hour, the series stacked (first at the bottom); a label at each day's start.

    `title` is the chart's accessible name; each non-empty bar has a tooltip with its figures.
    """
    count = len(hours)
    width = count * BAR_WIDTH
    totals = [sum(values[index] for _, values in series) for index in range(count)]
    peak = max(totals, default=0) or 1
    parts = [
        f'<svg class="chart" width="100%" height="{HEIGHT + AXIS}" viewBox="0 0 {width} {HEIGHT + AXIS}" '
        f'preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="0" y1="{HEIGHT}" x2="{width}" y2="{HEIGHT}" stroke="#888" stroke-width="0.5"/>',
    ]
    for index, hour in enumerate(hours):
        x = index * BAR_WIDTH
        if hour.hour == 0:
            parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{HEIGHT}" stroke="#ddd" stroke-width="0.5"/>')
            parts.append(
                f'<text x="{x + 1}" y="{HEIGHT + AXIS - 4}" font-size="9" fill="#555">'
                f"{hour.strftime('%m-%d')}</text>"
            )
        if not totals[index]:
            continue
        tooltip = ", ".join(f"{values[index]} {escape(name)}" for name, values in series)
        parts.append(f"<g><title>{hour.strftime('%Y-%m-%d %H:00')} UTC: {tooltip}</title>")
        base = float(HEIGHT)
        for (_, values), colour in zip(series, COLOURS, strict=False):
            value = values[index]
            if not value:
                continue
            height = max(1.0, value / peak * (HEIGHT - 4))
            base -= height
            parts.append(
                f'<rect x="{x}" y="{base:.1f}" width="{BAR_WIDTH - 1}" height="{height:.1f}" fill="{colour}"/>'
            )
        parts.append("</g>")
    parts.append(f'<text x="2" y="9" font-size="9" fill="#555">{peak}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value above is a number or escaped)


def swatch(index: int) -> Markup:
    """The legend's square in the colour of series `index`."""
    return Markup(  # noqa: S704  (a constant colour)
        f'<svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="{COLOURS[index]}"/></svg>'
    )

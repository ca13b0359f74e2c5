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


RANK_ROW = 20
RANK_LABEL = 150  # room for the domain's name left of its bar
RANK_WIDTH = 320
RANK_LABEL_CHARACTERS = 26


def ranked_bars(title: str, rows: Sequence[tuple[str, float, str]], *, link_prefix: str = "") -> Markup:
    """One horizontal bar per row, longest first: (label, value, the value as words).

    With `link_prefix` each label links to `link_prefix + label` (a domain's own page). A long
    label is cut, with the whole of it in the row's tooltip.
    """
    height = max(len(rows), 1) * RANK_ROW
    peak = max((value for _, value, _ in rows), default=0) or 1
    room = RANK_WIDTH - RANK_LABEL - 70
    parts = [
        f'<svg class="chart ranking" width="100%" viewBox="0 0 {RANK_WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value, words) in enumerate(rows):
        y = index * RANK_ROW
        shown = label if len(label) <= RANK_LABEL_CHARACTERS else label[: RANK_LABEL_CHARACTERS - 1] + "…"
        text = f'<text x="0" y="{y + 14}" font-size="11" fill="#222">{escape(shown)}</text>'
        if link_prefix:
            text = f'<a href="{escape(link_prefix + label)}">{text}</a>'
        width = max(1.0, value / peak * room)
        parts.append(
            f"<g><title>{escape(label)}: {escape(words)}</title>{text}"
            f'<rect x="{RANK_LABEL}" y="{y + 4}" width="{width:.1f}" height="{RANK_ROW - 8}" fill="{COLOURS[0]}"/>'
            f'<text x="{RANK_LABEL + width + 4:.1f}" y="{y + 14}" font-size="11" fill="#555">{escape(words)}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value above is a number or escaped)

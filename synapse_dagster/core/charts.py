"""Small bar charts as SVG, for materializations people would rather look at than read (files per extension, units
by outcome), embedded in markdown as a ``data:`` image, which the Dagster UI's markdown renderer allows.

Written here rather than with matplotlib: a horizontal bar chart is a few rectangles and labels, and matplotlib
would add its install and its import to every step that reports (see the README's *Dependencies and why*).
Labels come from file names, so they are untrusted: XML-escaped and cut to a bounded length.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from xml.sax.saxutils import escape

MAX_BARS = 12
MAX_LABEL = 28  # characters
_BAR_H, _GAP, _LABEL_W, _BAR_W, _VALUE_W, _TOP = 18, 6, 190, 320, 80, 30
_COLORS = ("#4f43dd", "#2a9d8f", "#e76f51", "#e9c46a", "#8d99ae")


def bar_chart_svg(title: str, counts: Mapping[str, int], *, colors: Mapping[str, str] | None = None) -> str:
    """One bar per label, longest first, at most :data:`MAX_BARS` (the rest summed into '… N more')."""
    bars = _bars(counts)
    height = _TOP + len(bars) * (_BAR_H + _GAP) + _GAP
    width = _LABEL_W + _BAR_W + _VALUE_W
    top = max((value for _, value in bars), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
             f'<text x="8" y="19" font-size="14" font-weight="bold">{escape(_cut(title, 80))}</text>']
    for index, (label, value) in enumerate(bars):
        y = _TOP + index * (_BAR_H + _GAP)
        length = max(1, round(_BAR_W * value / top)) if value else 0
        color = (colors or {}).get(label, _COLORS[index % len(_COLORS)])
        parts += [f'<text x="{_LABEL_W - 8}" y="{y + 13}" text-anchor="end">{escape(_cut(label, MAX_LABEL))}</text>',
                  f'<rect x="{_LABEL_W}" y="{y}" width="{length}" height="{_BAR_H}" fill="{escape(color)}"/>',
                  f'<text x="{_LABEL_W + length + 6}" y="{y + 13}">{value:,}</text>']
    if not bars:
        parts.append(f'<text x="8" y="{_TOP + 13}">nothing to show</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_markdown(svg: str, alt: str) -> str:
    """The chart as a markdown image (base64: a data URI must not hold raw '<' or '#')."""
    encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"![{_markdown_alt(alt)}](data:image/svg+xml;base64,{encoded})"


def _bars(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    ranked = sorted(((str(k), int(v)) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) <= MAX_BARS:
        return ranked
    shown, rest = ranked[: MAX_BARS - 1], ranked[MAX_BARS - 1:]
    return [*shown, (f"… {len(rest)} more", sum(value for _, value in rest))]


def _cut(text: str, limit: int) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _markdown_alt(alt: str) -> str:
    return "".join(ch for ch in _cut(alt, 80) if ch not in "[]()\\")

"""The SVG bar charts: well-formed whatever the labels hold, bounded in size, and drawn to scale."""

import base64
import xml.etree.ElementTree as ET

from synapse_dagster.core.charts import MAX_BARS, bar_chart_svg, svg_markdown

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_bars_are_to_scale_longest_first_with_their_counts():
    svg = parsed(bar_chart_svg("Files", {".json": 50, ".png": 100, ".txt": 0}))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts == ["Files", ".png", "100", ".json", "50"]  # a zero count draws no bar
    widths = [float(r.get("width")) for r in svg.iter(f"{SVG}rect")][1:]  # the first rect is the background
    assert widths[0] == 2 * widths[1]


def test_hostile_labels_stay_text_and_bounded():
    evil = '<script>alert(1)</script>&"\x00\u202e' + "x" * 500
    svg_text = bar_chart_svg("t</text><script>", {evil: 3})
    svg = parsed(svg_text)  # well-formed: nothing escaped the text nodes
    assert not list(svg.iter(f"{SVG}script")) and "<script>" not in svg_text
    label = [t.text for t in svg.iter(f"{SVG}text")][1]
    assert label.startswith("<script>") and len(label) <= 28 and "\x00" not in label


def test_many_labels_are_cut_to_the_bound_and_the_rest_summed():
    svg = parsed(bar_chart_svg("t", {f".e{i:03d}": 1000 - i for i in range(200)}))
    texts = [t.text for t in svg.iter(f"{SVG}text")][1:]
    labels, values = texts[0::2], texts[1::2]
    assert len(labels) == MAX_BARS and labels[-1] == f"… {200 - MAX_BARS + 1} more"
    assert sum(int(v.replace(",", "")) for v in values) == sum(1000 - i for i in range(200))


def test_markdown_image_carries_the_svg_and_a_safe_alt_text():
    md = svg_markdown(bar_chart_svg("t", {"a": 1}), "Units [valid](x)")
    alt, data = md[2:].split("](data:image/svg+xml;base64,")
    assert alt == "Units validx" and data.endswith(")")
    assert parsed(base64.b64decode(data[:-1]).decode()).tag == f"{SVG}svg"


def test_nothing_to_show_is_said():
    assert "nothing to show" in bar_chart_svg("t", {})

"""Plot functions: valid SVG and PNG, deterministic bytes, escaped text, layout that grows with rows."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

from PIL import Image

from factory import make_results
from metapsych.report import forest, funnel, plots
from metapsych.report.jobs import subgroup_blocks

SVG = "{http://www.w3.org/2000/svg}"


def _check(pair: tuple[bytes, bytes]) -> tuple[ET.Element, Image.Image]:
    svg, png = pair
    root = ET.fromstring(svg)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert root.tag == f"{SVG}svg"
    assert image.format == "PNG" and image.width > 100 and image.height > 50
    return root, image


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _cell(results: dict[str, Any], k: int) -> dict[str, Any]:
    return next(c for c in results["cells"] if c["status"] == "ok" and c["k"] == k)


def test_forest_plot_has_rows_columns_and_footer(results: dict[str, Any]) -> None:
    cell = _cell(results, 12)
    root, _ = _check(forest.forest_plot(cell["studies"], cell["main"], title="CBT vs waitlist"))
    texts = _texts(root)
    assert cell["studies"][0]["study"] in texts
    assert "Random-effects model" in texts and "Prediction interval" in texts
    assert any(t.startswith("Heterogeneity: τ² = ") for t in texts)
    assert any(t.startswith("Test for overall effect: t(11) = ") for t in texts)
    assert f"{cell['main']['estimate']:.2f} [{cell['main']['ci_lower']:.2f}; {cell['main']['ci_upper']:.2f}]" in texts


def test_forest_plot_grows_with_studies_and_is_deterministic(results: dict[str, Any]) -> None:
    small, large = _cell(results, 12), _cell(results, 120)
    _, img_small = _check(forest.forest_plot(small["studies"], small["main"]))
    first = forest.forest_plot(large["studies"], large["main"])
    _, img_large = _check(first)
    assert img_large.height > img_small.height + 100 * 18  # fixed row height, no shrinking fonts
    assert forest.forest_plot(large["studies"], large["main"]) == first


def test_forest_plot_escapes_labels() -> None:
    studies = [{"study": "<script>alert(1)</script> & co", "yi": 0.3, "ci_lower": 0.0, "ci_upper": 0.6,
                "weight": 100.0, "n_arm1": 20, "n_arm2": 21, "rob": "low"}]
    svg, _ = forest.forest_plot(studies, None)
    assert b"<script>" not in svg
    assert "<script>alert(1)</script> & co" in _texts(ET.fromstring(svg))


def test_subgroup_forest_has_blocks_and_test(results: dict[str, Any]) -> None:
    cell = _cell(results, 12)
    block = cell["subgroups"]["format"]
    groups = subgroup_blocks(cell, "format", block)
    assert [g["label"] for g in groups] == [f"format = {lv}" for lv in sorted(block["levels"])]
    root, _ = _check(forest.forest_plot([], cell["main"], groups=groups, subgroup_test=block["test"]))
    texts = _texts(root)
    assert sum(t.startswith("Subtotal (k = ") for t in texts) == len(groups)
    assert any(t.startswith("Test for subgroup differences: Q = 3.20, df = 2") for t in texts)


def test_funnel_and_small_plots_are_valid_and_deterministic(results: dict[str, Any]) -> None:
    cell = _cell(results, 12)
    filled = cell["bias"]["trim_and_fill"]["filled"]
    first = funnel.funnel_plot(cell["studies"], cell["main"], filled=filled, title="funnel")
    _check(first)
    assert funnel.funnel_plot(cell["studies"], cell["main"], filled=filled, title="funnel") == first
    assert b"<dc:date>" not in first[0] and b"Software" not in first[1]
    mod = results["moderators"]["depression"]["year"]
    for pair in (
        plots.baujat_plot(cell["influence"]["baujat"], title="Baujat"),
        plots.bubble_plot(mod["points"], moderator="year", coefficients=mod["coefficients"], test=mod),
        plots.cumulative_plot(cell["cumulative"], title="Cumulative"),
        plots.rob_summary_plot(cell["studies"]),
        plots.ranking_plot([{"label": "cbt vs waitlist", "k": 3, "estimate": 0.5, "ci_lower": 0.1,
                             "ci_upper": 0.9, "flag": True}]),
    ):
        _check(pair)


def test_rob_shares_are_weighted() -> None:
    shares = plots.rob_shares([{"rob": "low", "weight": 75.0}, {"rob": "high", "weight": 25.0},
                               {"rob": None, "weight": 0.0}])
    assert shares == {"low": 75.0, "some": 0.0, "high": 25.0, "unclear": 0.0}


def test_factory_document_renders_every_cell_size() -> None:
    doc = make_results(sizes=(3,), conditions={"gad": ["cbt"]})
    cell = doc["cells"][0]
    _check(forest.forest_plot(cell["studies"], cell["main"]))


def test_cached_text_masks_draw_the_pixels_pillow_draws() -> None:
    """The PNG text path reuses glyph masks across strings and plots; the pixels must be Pillow's own."""
    from PIL import ImageDraw

    from metapsych.report import vector

    ops = [{"x": 10.0 + 37.25 * i, "y": 12.5 + 9.75 * i, "text": text, "size": size, "anchor": anchor,
            "bold": bold, "colour": colour, "vertical": False}
           for i, (text, size, anchor, bold, colour) in enumerate([
               ("Smith 2019", 12.0, "start", False, "#222222"), ("0.42 [0.10; 0.74]", 11.0, "end", False, "#1f4e79"),
               ("Smith 2019", 12.0, "start", False, "#222222"), ("Total (k = 12)", 12.0, "middle", True, "#000000"),
               ("-0.5", 10.0, "middle", False, "#555555")])]
    cached = Image.new("RGB", (260, 70), "#ffffff")
    direct = cached.copy()
    on_cached, on_direct = ImageDraw.Draw(cached, "RGBA"), ImageDraw.Draw(direct, "RGBA")
    for op in ops:
        vector._png_text(cached, on_cached, op)
        on_direct.text((op["x"], op["y"]), op["text"], font=vector._font(op["bold"], op["size"]),
                       fill=vector._rgba(op["colour"]), anchor=vector.PIL_ANCHOR[op["anchor"]])
    assert cached.tobytes() == direct.tobytes()

"""A tiny two-target canvas: record shapes and text once, emit SVG (by hand) and PNG (with Pillow).

Used for the row-based plots (forest, cumulative, ranking) that can have hundreds of text cells:
matplotlib 3.11 lays out and rasterises text in Python, glyph by glyph, which made a 120-study forest
plot take seconds. Here text is placed at fixed anchors (start/middle/end, vertically centred), so no
text measuring is needed. Output is deterministic: no ids, no dates, fixed fonts and number formatting.
Coordinates are pixels at 96 dpi, y downwards.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SVG_FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
PIL_ANCHOR = {"start": "lm", "middle": "mm", "end": "rm"}
SUPERSAMPLE = 4
PALETTE_GAP = 8  # least difference (in any channel) between palette entries
RAMP_STEPS = 15  # shades per colour in the PNG palette (more make Pillow's palette lookup coarser)


def xml_escape(text: str) -> str:
    """``&``, ``<``, ``>`` and ``"`` as XML entities, for text and double-quoted attributes (as
    xml.sax.saxutils does, whose import pulls in urllib and http.client: 60 ms in every plot worker)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _n(value: float) -> str:
    """Fixed coordinate formatting (2 decimals, no trailing zeros) so SVG bytes are stable."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass
class Canvas:
    """Drawing operations in pixel units; ``svg()`` and ``png()`` render the same list."""

    width: float
    height: float
    ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str = "#222222", width: float = 1.0,
             dash: bool = False) -> None:
        self.ops.append(("line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "colour": colour, "width": width,
                                  "dash": dash}))

    def polygon(self, points: list[tuple[float, float]], fill: str, opacity: float = 1.0) -> None:
        self.ops.append(("polygon", {"points": points, "fill": fill, "opacity": opacity}))

    def rect(self, x: float, y: float, w: float, h: float, fill: str, opacity: float = 1.0) -> None:
        self.polygon([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], fill, opacity)

    def circle(self, cx: float, cy: float, r: float, fill: str, stroke: str | None = None,
               opacity: float = 1.0) -> None:
        self.ops.append(("circle", {"cx": cx, "cy": cy, "r": r, "fill": fill, "stroke": stroke,
                                    "opacity": opacity}))

    def text(self, x: float, y: float, text: str, *, size: float = 12.0, anchor: str = "start",
             bold: bool = False, colour: str = "#222222", vertical: bool = False) -> None:
        """Text vertically centred on y; ``vertical`` turns it 90 degrees counter-clockwise about (x, y)."""
        self.ops.append(("text", {"x": x, "y": y, "text": text, "size": size, "anchor": anchor, "bold": bold,
                                  "colour": colour, "vertical": vertical}))

    def svg(self) -> bytes:
        """The drawing as a standalone SVG document (data strings are XML-escaped)."""
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.width)}" height="{_n(self.height)}" '
               f'viewBox="0 0 {_n(self.width)} {_n(self.height)}" font-family="{xml_escape(SVG_FONT)}">',
               '<rect width="100%" height="100%" fill="#ffffff"/>']
        for kind, op in self.ops:
            out.append(_SVG[kind](op))
        out.append("</svg>\n")
        return "\n".join(out).encode()

    def png(self) -> bytes:
        """The drawing rasterised with Pillow (text antialiased, DejaVu fonts shipped with matplotlib)."""
        from PIL import Image, ImageDraw

        image = Image.new("RGB", (int(round(self.width)), int(round(self.height))), "#ffffff")
        draw = ImageDraw.Draw(image, "RGBA")
        for kind, op in self.ops:
            _PNG[kind](image, draw, op)
        return png_bytes(image, self.colours())

    def colours(self) -> list[str]:
        """The colours the drawing uses (lower-case hex), sorted."""
        found = {op[key].lower() for _, op in self.ops for key in ("colour", "fill", "stroke") if op.get(key)}
        return sorted(found)


def import_pillow() -> None:
    """Import the parts of Pillow the PNG output uses, with its basic image plugins (the PNG writer)."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: F401

    Image.preinit()


def png_bytes(image: Any, colours: list[str] | None = None) -> bytes:
    """Encode as a palette PNG without metadata: a third of the RGB size, and faster to write.

    The palette is known before drawing: white and, for every colour used, a ramp of RAMP_STEPS shades
    from white to it, which is what antialiasing on a white background produces. Mapping to a given
    palette costs a sixth of choosing one (octree), and keeps the pixels closer to the drawing.
    Without ``colours`` (an image drawn by another library) a 64-colour palette is chosen per image.
    """
    from PIL import Image

    if colours is None:
        indexed = image.quantize(colors=64, method=Image.Quantize.FASTOCTREE)
    else:
        palette = Image.new("P", (1, 1))
        palette.putpalette(ramp_palette(colours))
        indexed = image.quantize(palette=palette, dither=Image.Dither.NONE)
    out = io.BytesIO()
    indexed.save(out, format="png", optimize=False, compress_level=6)
    return out.getvalue()


def ramp_palette(colours: list[str]) -> list[int]:
    """RGB triples (flattened, 256 entries): white, then RAMP_STEPS shades towards each colour (fewer shades
    when there are many colours), then black padding."""
    others = [c for c in colours if c.lower() != "#ffffff"]
    steps = max(2, min(RAMP_STEPS, 255 // max(1, len(others))))
    entries = [(255, 255, 255)]
    for colour in others[:255 // steps]:
        rgb = _rgba(colour)[:3]
        for step in range(steps, 0, -1):  # the colour itself first, then lighter shades
            shade = tuple(round(255 + (channel - 255) * step / steps) for channel in rgb)
            # Pillow looks colours up in buckets of 4 levels: a shade that close to an entry would take its pixels
            if all(max(abs(a - b) for a, b in zip(shade, entry)) >= PALETTE_GAP for entry in entries):
                entries.append(shade)
    values = [channel for entry in entries for channel in entry]
    return values + [0] * (768 - len(values))


def _svg_line(op: dict[str, Any]) -> str:
    dash = ' stroke-dasharray="3 3"' if op["dash"] else ""
    return (f'<line x1="{_n(op["x1"])}" y1="{_n(op["y1"])}" x2="{_n(op["x2"])}" y2="{_n(op["y2"])}" '
            f'stroke="{op["colour"]}" stroke-width="{_n(op["width"])}"{dash}/>')


def _svg_polygon(op: dict[str, Any]) -> str:
    points = " ".join(f"{_n(x)},{_n(y)}" for x, y in op["points"])
    opacity = f' fill-opacity="{_n(op["opacity"])}"' if op["opacity"] < 1 else ""
    return f'<polygon points="{points}" fill="{op["fill"]}"{opacity}/>'


def _svg_circle(op: dict[str, Any]) -> str:
    stroke = f' stroke="{op["stroke"]}"' if op["stroke"] else ""
    opacity = f' fill-opacity="{_n(op["opacity"])}"' if op["opacity"] < 1 else ""
    return f'<circle cx="{_n(op["cx"])}" cy="{_n(op["cy"])}" r="{_n(op["r"])}" fill="{op["fill"]}"{opacity}{stroke}/>'


def _svg_text(op: dict[str, Any]) -> str:
    weight = ' font-weight="bold"' if op["bold"] else ""
    turn = f' transform="rotate(-90 {_n(op["x"])} {_n(op["y"])})"' if op["vertical"] else ""
    return (f'<text x="{_n(op["x"])}" y="{_n(op["y"])}" font-size="{_n(op["size"])}" text-anchor="{op["anchor"]}" '
            f'dominant-baseline="central" fill="{op["colour"]}"{weight}{turn}>{xml_escape(op["text"])}</text>')


_SVG = {"line": _svg_line, "polygon": _svg_polygon, "circle": _svg_circle, "text": _svg_text}


def _rgba(colour: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), int(round(255 * opacity))


def _png_line(image: Any, draw: Any, op: dict[str, Any]) -> None:
    width = max(1, int(round(op["width"])))
    if not op["dash"]:
        draw.line([(op["x1"], op["y1"]), (op["x2"], op["y2"])], fill=_rgba(op["colour"]), width=width)
        return
    length = max(abs(op["x2"] - op["x1"]), abs(op["y2"] - op["y1"]), 1e-9)
    steps = int(length // 6) + 1
    for i in range(steps):
        t0, t1 = i * 6 / length, min((i * 6 + 3) / length, 1.0)
        if t0 >= 1:
            break
        draw.line([(op["x1"] + (op["x2"] - op["x1"]) * t0, op["y1"] + (op["y2"] - op["y1"]) * t0),
                   (op["x1"] + (op["x2"] - op["x1"]) * t1, op["y1"] + (op["y2"] - op["y1"]) * t1)],
                  fill=_rgba(op["colour"]), width=width)


def _png_polygon(image: Any, draw: Any, op: dict[str, Any]) -> None:
    """Axis-aligned rectangles directly; other shapes (diamonds, triangles) antialiased by drawing a
    supersampled mask and scaling it down, so a flat pooled diamond has smooth edges."""
    from PIL import Image, ImageDraw

    points, colour = op["points"], _rgba(op["fill"], op["opacity"])
    xs, ys = [x for x, _ in points], [y for _, y in points]
    if len(points) == 4 and len(set(xs)) == 2 and len(set(ys)) == 2:
        draw.rectangle([min(xs), min(ys), max(xs), max(ys)], fill=colour)
        return
    x0, y0 = int(min(xs)) - 1, int(min(ys)) - 1
    w, h = int(max(xs)) + 2 - x0, int(max(ys)) + 2 - y0
    mask = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE), 0)
    ImageDraw.Draw(mask).polygon([((x - x0) * SUPERSAMPLE, (y - y0) * SUPERSAMPLE) for x, y in points],
                                 fill=colour[3])
    image.paste(colour[:3], (x0, y0), mask.resize((w, h), Image.Resampling.BOX))


def _png_circle(image: Any, draw: Any, op: dict[str, Any]) -> None:
    r = op["r"]
    draw.ellipse([op["cx"] - r, op["cy"] - r, op["cx"] + r, op["cy"] + r], fill=_rgba(op["fill"], op["opacity"]),
                 outline=_rgba(op["stroke"]) if op["stroke"] else None)


def _png_text(image: Any, draw: Any, op: dict[str, Any]) -> None:
    if not op["vertical"] and "\n" not in op["text"]:
        _draw_line_of_text(draw, op["x"], op["y"], op["text"], op["bold"], op["size"], op["anchor"], op["colour"])
        return
    font = _font(op["bold"], op["size"])
    if not op["vertical"]:
        draw.text((op["x"], op["y"]), op["text"], font=font, fill=_rgba(op["colour"]), anchor=PIL_ANCHOR[op["anchor"]])
        return
    from PIL import Image, ImageDraw

    width = int(font.getlength(op["text"])) + 4
    height = int(op["size"] * 1.5) + 2
    patch = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    anchor_x = {"start": 2, "middle": width / 2, "end": width - 2}[op["anchor"]]
    ImageDraw.Draw(patch).text((anchor_x, height / 2), op["text"], font=font, fill=_rgba(op["colour"]),
                               anchor=PIL_ANCHOR[op["anchor"]])
    turned = patch.rotate(90, expand=True)  # (anchor_x, h/2) -> (h/2, width - anchor_x)
    image.paste(turned, (int(round(op["x"] - height / 2)), int(round(op["y"] - (width - anchor_x)))), turned)


def _draw_line_of_text(draw: Any, x: float, y: float, text: str, bold: bool, size: float, anchor: str,
                       colour: str) -> None:
    """``draw.text`` for one line, with the glyph mask rendered once per string and position fraction.

    A forest plot and its subgroup versions repeat the same labels and numbers (6,400 strings, 700
    distinct, in the largest cell), and rendering the mask is most of the cost of drawing text. The
    steps are those of Pillow's ``ImageDraw.text`` for a single line, so the pixels are the same.
    """
    mask, (dx, dy) = _text_mask(text, bold, size, anchor, math.modf(x)[0], math.modf(y)[0])
    draw.draw.draw_bitmap((int(x) + dx, int(y) + dy), mask, draw.draw.draw_ink(_rgba(colour)))


@lru_cache(maxsize=16384)
def _text_mask(text: str, bold: bool, size: float, anchor: str, frac_x: float, frac_y: float) -> tuple[Any, tuple]:
    """Pillow's antialiased mask of ``text`` and its offset from the anchor point (cached: see above)."""
    return _font(bold, size).getmask2(text, "L", anchor=PIL_ANCHOR[anchor], start=(frac_x, frac_y))


_PNG = {"line": _png_line, "polygon": _png_polygon, "circle": _png_circle, "text": _png_text}


@lru_cache(maxsize=32)
def _font(bold: bool, size: float) -> Any:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = _font_folder() / name
    return ImageFont.truetype(str(path), size=size, layout_engine=ImageFont.Layout.BASIC)  # same bytes with or without libraqm


@lru_cache(maxsize=1)
def _font_folder() -> Path:
    """matplotlib's bundled TrueType fonts, found without importing matplotlib (a third of a second)."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin is not None:
        folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
        if folder.is_dir():
            return folder
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def nice_ticks(lo: float, hi: float, max_ticks: int = 8) -> list[float]:
    """Round tick positions covering [lo, hi] (steps 1, 2, 2.5 or 5 times a power of ten)."""
    import math

    span = max(hi - lo, 1e-12)
    base = 10.0 ** math.floor(math.log10(span / max_ticks))
    for step in (base, 2 * base, 2.5 * base, 5 * base, 10 * base, 20 * base):
        first = -(-lo // step) * step
        ticks = [round(first + i * step, 6) for i in range(int((hi - first) / step + 1e-9) + 1)]
        if len(ticks) <= max_ticks:
            return ticks
    return [lo, hi]


@dataclass(frozen=True)
class Frame:
    """A plot area on a canvas with linear data-to-pixel scales (y may run downwards, as for funnel SE)."""

    left: float
    top: float
    width: float
    height: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    y_down: bool = False

    def x(self, value: float) -> float:
        lo, hi = self.xlim
        return self.left + (value - lo) / (hi - lo) * self.width

    def y(self, value: float) -> float:
        lo, hi = self.ylim
        frac = (value - lo) / (hi - lo)
        return self.top + (frac if self.y_down else 1.0 - frac) * self.height

    def axes(self, canvas: Canvas, xlabel: str, ylabel: str, colour: str = "#222222",
             xticks: list[tuple[float, str]] | None = None) -> None:
        """Left and bottom axis lines with round ticks (or the given x ticks), tick labels and axis labels."""
        bottom, right = self.top + self.height, self.left + self.width
        canvas.line(self.left, bottom, right, bottom, colour, 1)
        canvas.line(self.left, self.top, self.left, bottom, colour, 1)
        for tick, label in xticks if xticks is not None else [(t, f"{t:g}") for t in nice_ticks(*self.xlim)]:
            canvas.line(self.x(tick), bottom, self.x(tick), bottom + 4, colour, 1)
            canvas.text(self.x(tick), bottom + 13, label, size=10, anchor="middle")
        for tick in nice_ticks(min(self.ylim), max(self.ylim), 7):
            canvas.line(self.left - 4, self.y(tick), self.left, self.y(tick), colour, 1)
            canvas.text(self.left - 7, self.y(tick), f"{tick:g}", size=10, anchor="end")
        canvas.text(self.left + self.width / 2, bottom + 30, xlabel, size=11, anchor="middle")
        canvas.text(self.left - 48, self.top + self.height / 2, ylabel, size=11, anchor="middle", vertical=True)

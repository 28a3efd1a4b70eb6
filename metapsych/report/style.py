"""The report's shared look (colours, number formatting) and its matplotlib style with byte-deterministic
SVG/PNG export.

Determinism matters because the report is committed to git and rebuilt on every change: the same data
must give the same bytes. Hence a fixed ``svg.hashsalt`` (no random ids), no creation date in SVG
metadata, no software tag in PNG metadata, fixed fonts, sizes and dpi. The report's own plots are drawn on
``vector.Canvas``; matplotlib (imported only when a figure is made) serves the network graph.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Bump when any plot's appearance changes, so cached plots are re-rendered.
RENDER_VERSION = "1"

PNG_DPI = 96
FONT_SIZE = 9.0
ROW_HEIGHT_IN = 0.22
COLOURS = {
    "point": "#1f4e79",
    "pooled": "#b22222",
    "pi": "#b22222",
    "grid": "#cccccc",
    "text": "#222222",
    "muted": "#666666",
    "filled": "#ffffff",
    "low": "#2e8b57",
    "some": "#e0a800",
    "high": "#c0392b",
    "unclear": "#9e9e9e",
}

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "metapsych",
    "svg.fonttype": "none",
    "path.simplify": True,
    "figure.dpi": PNG_DPI,
    "savefig.dpi": PNG_DPI,
    "axes.unicode_minus": False,
}



@lru_cache(maxsize=1)
def _configure_matplotlib() -> None:
    """Agg backend and the report style, once per process."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(STYLE)


def new_figure(width_in: float, height_in: float) -> Figure:
    """A fresh figure outside pyplot's global state (so worker processes never leak figures)."""
    _configure_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=PNG_DPI)


def figure_bytes(fig: Figure) -> tuple[bytes, bytes]:
    """Render one figure to (svg, png) bytes with fixed metadata, so repeated renders are identical.

    The SVG comes from matplotlib (text as <text> elements). For the PNG, matplotlib's Agg backend draws
    the graphics and Pillow draws each line of text at the baseline origin matplotlib computed for it:
    matplotlib 3.11 rasterises text glyph by glyph in Python, which is many times slower.
    """
    import matplotlib

    with matplotlib.rc_context(STYLE):
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        png = _png_bytes(fig)
    return svg.getvalue(), png


def _png_bytes(fig: Figure) -> bytes:
    """Graphics by Agg, text by Pillow (at the baseline origins matplotlib computed), no metadata."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    from metapsych.report.vector import png_bytes

    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(PNG_DPI)
    renderer = canvas.get_renderer()
    recorded: list[tuple[float, float, str, Any, float, Any]] = []

    def record(gc: Any, x: float, y: float, s: str, prop: Any, angle: float, ismath: Any = False,
               mtext: Any = None) -> None:
        recorded.append((x, y, s, prop, angle, gc.get_rgb()))

    renderer.draw_text = record  # type: ignore[method-assign]
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    image = Image.frombuffer("RGBA", canvas.get_width_height(), renderer.buffer_rgba(), "raw", "RGBA", 0, 1)
    image = image.convert("RGB")
    for x, y, text, prop, angle, rgb in recorded:
        _draw_text(image, x, y, text, prop, angle, rgb)
    return png_bytes(image)


def _draw_text(image: Any, x: float, y: float, text: str, prop: Any, angle: float, rgb: Any) -> None:
    """One line of text with its baseline-left origin at (x, y) (pixels, y down), rotated by ``angle``."""
    from PIL import Image, ImageDraw

    font = _pil_font(_font_path(prop), prop.get_size_in_points() * PNG_DPI / 72)
    colour = tuple(int(round(255 * c)) for c in rgb[:3]) + (255,)
    if not angle % 360:
        ImageDraw.Draw(image).text((x, y), text, font=font, fill=colour, anchor="ls")
        return
    ascent, descent = font.getmetrics()
    width = int(font.getlength(text)) + 2
    patch = Image.new("RGBA", (width, ascent + descent + 2), (0, 0, 0, 0))
    ImageDraw.Draw(patch).text((0, ascent), text, font=font, fill=colour, anchor="ls")
    rotated = patch.rotate(angle, expand=True, resample=Image.BICUBIC)
    if abs(angle % 360 - 90) < 1e-9:  # the origin (0, ascent) moves to (ascent, width)
        image.paste(rotated, (int(round(x - ascent)), int(round(y - width))), rotated)
    else:
        image.paste(rotated, (int(round(x - rotated.width / 2)), int(round(y - rotated.height / 2))), rotated)


def _font_path(prop: Any) -> str:
    from matplotlib import font_manager

    return font_manager.findfont(prop)


@lru_cache(maxsize=64)
def _pil_font(path: str, size_px: float) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(path, size=size_px)


def fmt(value: float | None, digits: int = 2) -> str:
    """Fixed float formatting used on every page and plot; missing values as an en dash."""
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"


def fmt_ci(lower: float | None, upper: float | None, digits: int = 2) -> str:
    """A confidence interval as ``[lo; hi]`` (the separator avoids clashing with negative numbers)."""
    return f"[{fmt(lower, digits)}; {fmt(upper, digits)}]"


def fmt_p(p: float | None) -> str:
    """p-values as reviewers write them: three decimals, ``< 0.001`` below that."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float | None) -> str:
    """``p = 0.042`` or ``p < 0.001``."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"

"""One matplotlib style for every report figure, and byte-deterministic SVG/PNG export.

Determinism matters because the report is committed to git and rebuilt on every change: the same data
must give the same bytes. Hence a fixed ``svg.hashsalt`` (no random ids), no creation date in SVG
metadata, no software tag in PNG metadata, fixed fonts, sizes and dpi.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

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

plt.rcParams.update(STYLE)


def new_figure(width_in: float, height_in: float) -> Figure:
    """A fresh figure outside pyplot's global state (so worker processes never leak figures)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=PNG_DPI)


def figure_bytes(fig: Figure) -> tuple[bytes, bytes]:
    """Render one figure to (svg, png) bytes with fixed metadata, so repeated renders are identical.

    The SVG comes from matplotlib (text as <text> elements). For the PNG, matplotlib's Agg backend draws
    the graphics and Pillow draws the text into each text's laid-out box: matplotlib 3.11 rasterises text
    glyph by glyph in Python, which made large forest plots take seconds; this is ~10x faster and the
    text lands where matplotlib placed it.
    """
    with plt.rc_context(STYLE):
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        png = _png_bytes(fig)
    return svg.getvalue(), png


def _png_bytes(fig: Figure) -> bytes:
    """Graphics by Agg, text by Pillow, encoded without metadata."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(PNG_DPI)
    fig.draw_without_rendering()
    renderer = canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    for t in texts:
        t.set_visible(False)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    image = image.convert("RGB")
    height = image.height
    for text, box in zip(texts, boxes):
        text.set_visible(True)
        _paste_text(image, text, box, height)
    out = io.BytesIO()
    image.save(out, format="png", optimize=False, compress_level=6)
    return out.getvalue()


def _paste_text(image: Any, text: Any, box: Any, height: int) -> None:
    """Draw one matplotlib Text with Pillow, centred in the box matplotlib laid it out in."""
    from matplotlib.colors import to_rgba
    from PIL import Image, ImageDraw

    font = _pil_font(text.get_fontproperties().get_file() or _font_path(text), text.get_fontsize() * PNG_DPI / 72)
    rgba = to_rgba(text.get_color(), text.get_alpha())
    colour = tuple(int(round(255 * c)) for c in rgba)
    content = text.get_text()
    align = {"left": "left", "right": "right"}.get(text.get_horizontalalignment(), "center")
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox((0, 0), content, font=font, align=align)
    patch = Image.new("RGBA", (max(1, right - left + 2), max(1, bottom - top + 2)), (0, 0, 0, 0))
    ImageDraw.Draw(patch).multiline_text((1 - left, 1 - top), content, font=font, fill=colour, align=align)
    rotation = text.get_rotation() % 360
    if rotation:
        patch = patch.rotate(rotation, expand=True, resample=Image.BICUBIC)
    cx, cy = (box.x0 + box.x1) / 2, height - (box.y0 + box.y1) / 2
    image.paste(patch, (int(round(cx - patch.width / 2)), int(round(cy - patch.height / 2))), patch)


def _font_path(text: Any) -> str:
    from matplotlib import font_manager

    return font_manager.findfont(text.get_fontproperties())


@lru_cache(maxsize=64)
def _pil_font(path: str, size_px: float) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(path, size=size_px)


def fmt(value: float | None, digits: int = 2) -> str:
    """Fixed float formatting used on every page and plot; missing values as an en dash."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


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

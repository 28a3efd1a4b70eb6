"""End to end: the HTML report opens in headless Chromium without console messages and every image loads.

Skips (with the reason) where no Chromium is installed; `.ci/run` installs it.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from metapsych.report.build import write_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found: install it (apt-get install chromium) "
                                                          "to run the browser end-to-end test")


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [v for k, v in attrs if k == "src" and v]


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, page.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)


def _check_page(page: Path, tmp: Path) -> None:
    proc = _chromium(page, tmp / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    parser = _Images()
    parser.feed(proc.stdout)
    assert parser.sources, f"no images in {page.name}"
    for src in parser.sources:
        assert not re.match(r"^[a-z]+:", src), f"external image {src}"
        path = (page.parent / src).resolve()
        assert path.is_file(), f"{page.name}: missing image {src}"
        if path.suffix == ".png":
            Image.open(io.BytesIO(path.read_bytes())).load()
        else:
            assert ET.fromstring(path.read_bytes()).tag.endswith("svg")


def test_report_opens_in_chromium(tmp_path: Path, tiny_results: dict[str, Any]) -> None:
    out = tmp_path / "reports"
    write_report(tiny_results, out, changes=None)
    _check_page(out / "index.html", tmp_path)
    cell = next(c for c in tiny_results["cells"] if c["status"] == "ok" and c["k"] == 12)
    _check_page(out / "cells" / f"{cell['id']}.html", tmp_path)

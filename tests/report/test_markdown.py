"""Markdown escaping: data strings show as text on GitHub and never break a table or inject HTML."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from metapsych.report.markdown import md_escape, table


def test_escapes_html_and_markdown() -> None:
    assert md_escape("<script>alert(1)</script>") == "&lt;script&gt;alert\\(1\\)&lt;/script&gt;"
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("Smith_2019 *x* [l](u)") == "Smith\\_2019 \\*x\\* \\[l\\]\\(u\\)"
    assert md_escape("O'Brien & Co\nnext") == "O'Brien &amp; Co next"
    assert md_escape(None) == ""
    assert md_escape("- item") == "\\- item" and md_escape("1. first") == "1\\. first"
    assert md_escape("Smith-Jones, 2019.") == "Smith-Jones, 2019."


@given(st.text())
def test_escaped_text_has_no_raw_html_pipes_or_newlines(text: str) -> None:
    out = md_escape(text)
    assert "<" not in out and ">" not in out and "\n" not in out and "\r" not in out
    assert not re.search(r"(?<!\\)(\\\\)*\|", out)  # every pipe is escaped
    assert table(["a"], [[out]]).count("\n") == 2  # one row stays one row


def test_table_layout() -> None:
    assert table(["x", "y"], [["1", "2"]], "lr") == "| x | y |\n| :--- | ---: |\n| 1 | 2 |"

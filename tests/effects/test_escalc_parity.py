"""Formula-level parity with metafor 3.8-1 escalc (oracle fixtures in tests/fixtures/escalc)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metapsych.effects import binary, continuous, convert, nnt

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "escalc"
RTOL = 1e-8
ATOL = 1e-12


def _load(name: str) -> tuple[pd.DataFrame, dict]:
    return pd.read_csv(FIX / f"{name}.csv"), json.loads((FIX / f"{name}.json").read_text())


def _close(actual: np.ndarray, expected: list) -> None:
    exp = np.array([np.nan if v is None else v for v in expected], dtype=float)
    np.testing.assert_allclose(actual, exp, rtol=RTOL, atol=ATOL, equal_nan=True)


@pytest.fixture(scope="module")
def cont() -> tuple[pd.DataFrame, dict]:
    return _load("continuous")


@pytest.fixture(scope="module")
def bina() -> tuple[pd.DataFrame, dict]:
    return _load("binary")


def test_smd_matches_escalc(cont: tuple[pd.DataFrame, dict]) -> None:
    d, ref = cont
    es = continuous.smd(d.m1i, d.sd1i, d.n1i, d.m2i, d.sd2i, d.n2i)
    _close(es.yi, ref["continuous"]["SMD"]["yi"])
    _close(es.vi, ref["continuous"]["SMD"]["vi"])
    _close(continuous.hedges_j(d.n1i + d.n2i - 2), ref["continuous"]["SMD"]["J"])


def test_md_matches_escalc(cont: tuple[pd.DataFrame, dict]) -> None:
    d, ref = cont
    es = continuous.md(d.m1i, d.sd1i, d.n1i, d.m2i, d.sd2i, d.n2i)
    _close(es.yi, ref["continuous"]["MD"]["yi"])
    _close(es.vi, ref["continuous"]["MD"]["vi"])


def test_large_n_does_not_overflow() -> None:
    m = np.array([9_998.0, 1e5, 1e6])  # J - (1 - 3/(4m - 1)) is O(1/m^2)
    j = continuous.hedges_j(m)
    assert np.all(np.isfinite(j))
    np.testing.assert_allclose(j, 1 - 3 / (4 * m - 1), rtol=1e-9)


@pytest.mark.parametrize(
    "measure, func", [("OR", binary.log_or), ("RR", binary.log_rr), ("RD", binary.risk_difference)]
)
def test_binary_matches_escalc(bina: tuple[pd.DataFrame, dict], measure: str, func) -> None:
    d, ref = bina
    t = binary.table_from_cells(d.ai, d.n1i - d.ai, d.ci, d.n2i - d.ci)
    es = func(t)
    _close(es.yi, ref["binary"][measure]["yi"])
    _close(es.vi, ref["binary"][measure]["vi"])
    np.testing.assert_array_equal(t.corrected, ref["binary"]["correction_applied"])
    np.testing.assert_array_equal(t.double_zero, ref["binary"]["double_zero"])


def test_events_table_matches_cells(bina: tuple[pd.DataFrame, dict]) -> None:
    d, ref = bina
    t = binary.table_from_events(d.ai, d.n1i, d.ci, d.n2i)
    _close(t.bi, ref["binary"]["cells"]["bi"])
    _close(t.di, ref["binary"]["cells"]["di"])
    assert not t.corrected.any()


@pytest.fixture(scope="module")
def conv() -> tuple[pd.DataFrame, dict]:
    return _load("conversions")


@pytest.mark.parametrize("key", ["from_t", "from_f", "from_p"])
def test_smd_from_statistics(conv: tuple[pd.DataFrame, dict], key: str) -> None:
    d, ref = conv
    t = {"from_t": d.ti, "from_f": convert.t_from_f(d.fi), "from_p": convert.t_from_p(d.pi, d.n1i, d.n2i)}[key]
    es = convert.smd_from_t(t, d.n1i, d.n2i)
    _close(es.yi, ref[key]["yi"])
    _close(es.vi, ref[key]["vi"])


def test_logit_conversion_matches_or2dl(conv: tuple[pd.DataFrame, dict]) -> None:
    _, ref = conv
    es = convert.logor_to_smd(ref["binary_or"]["yi"], ref["binary_or"]["vi"])
    _close(es.yi, ref["binary_or2dl"]["yi"])
    _close(es.vi, ref["binary_or2dl"]["vi"])
    back = convert.smd_to_logor(es.yi, es.vi)
    _close(back.yi, ref["binary_or"]["yi"])


def test_nnt_furukawa(conv: tuple[pd.DataFrame, dict]) -> None:
    d, ref = conv
    got = np.array([nnt.nnt_furukawa(g, c) for g, c in zip(d.g, d.cer)], dtype=float)
    exp = np.array([np.inf if v is None else v for v in ref["nnt"]], dtype=float)
    finite = np.isfinite(exp)
    np.testing.assert_allclose(got[finite], exp[finite], rtol=RTOL)
    assert np.all(np.isinf(got[d.g.to_numpy() == 0]))

"""Session 5 final review: non-ASCII level labels in R's order, a corrupt .gz input, and Q-profile intervals
under a fit control with a small iteration budget."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from metapsych.cli import app
from metapsych.stats.batch import fit_many
from metapsych.stats.heterogeneity import confint_tau2
from metapsych.stats.metareg import design_matrix, r_sort_key
from metapsych.stats.rma import fit
from metapsych.stats.tau2 import Control


def test_symbols_and_other_whitespace_sort_before_digits_and_letters_as_in_r() -> None:
    """R 4.2 (UTF-8 locale): sort(c("1–2", "10", "≤12", "13+", "a", "€5", " x", "\\tb")) gives
    "\\tb" " x" "≤12" "€5" "1–2" "10" "13+" "a"; and model.matrix(~ factor(c("18-64", "≥65"))) takes
    "≥65" as the reference level."""
    values = ["1–2", "10", "≤12", "13+", "a", "€5", " x", "\tb"]
    assert sorted(values, key=r_sort_key) == ["\tb", " x", "≤12", "€5", "1–2", "10", "13+", "a"]
    assert design_matrix({"age": ["18-64", "≥65", "18-64", "≥65"]}).names == ("intrcpt", "age18-64")


def test_a_corrupt_gzip_input_is_a_located_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"study,yi,vi\n" + b"a,1,2\n" * 1000))
    for i in range(20, 40):
        data[i] ^= 255
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["effects", str(path)])
    assert result.exit_code == 2
    assert "bad.csv.gz" in result.output and "Traceback" not in result.output


def test_qprofile_replays_use_confints_own_iteration_budget() -> None:
    """A fit control with maxiter 7 no longer makes the uniroot replay of a tiny bound raise: metafor's
    confint() has its own control (maxiter 1000)."""
    y = np.array([3.478e-4, -5.009e-4, 3.613e-4, 3.399e-4, 2.053e-4])
    v = np.array([2.02e-7, 2.90e-7, 1.29e-7, 2.90e-7, 1.62e-7])
    small, default = Control(maxiter=7), Control()
    batch = fit_many(y, v, np.zeros(5, int), estimator="DL", control=small)
    reference = fit_many(y, v, np.zeros(5, int), estimator="DL", control=default)
    np.testing.assert_array_equal(batch.tau2_ci_upper, reference.tau2_ci_upper)
    one = confint_tau2(y, v, fit(y, v, estimator="DL", control=small), control=small)
    assert one.tau2_upper == float(reference.tau2_ci_upper[0])


def test_a_config_path_that_is_a_folder_is_not_called_missing(tmp_path: Path) -> None:
    import pytest

    from metapsych.analysis.config import load_config
    from metapsych.errors import ConfigError

    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_a_thousands_separator_in_a_comma_separated_file_is_refused_not_read_as_a_decimal_comma(
        tmp_path: Path) -> None:
    """'1,000' was read as 1.0; '1,5' and '0,125' can only be decimal commas and are still read."""
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text('study,yi,vi\na,"1,000",0.1\nb,0.5,0.2\n')
    good.write_text('study,yi,vi\na,"1,5",0.1\nb,"0,125",0.2\n')
    result = CliRunner().invoke(app, ["pool", str(bad), "--json"])
    assert result.exit_code == 2 and "bad.csv:2: yi: '1,000'" in result.output
    assert CliRunner().invoke(app, ["pool", str(good), "--json"]).exit_code == 0

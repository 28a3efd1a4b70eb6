"""Network graph and network forest plot: deterministic SVG/PNG bytes carrying the treatments."""

from __future__ import annotations

import pytest

from metapsych.report.netgraph import circle_layout, network_forest, network_graph
from metapsych.stats.network import fit_network, network_payload
from tests.network.fixtures import columns


@pytest.fixture(scope="module")
def payload() -> dict:
    return network_payload(fit_network(**columns("random_multiarm"), reference="cau"))


def test_graph_is_deterministic_and_labelled(payload: dict) -> None:
    svg, png = network_graph(payload["graph"]["nodes"], payload["graph"]["edges"], title="depression")
    again = network_graph(payload["graph"]["nodes"], payload["graph"]["edges"], title="depression")
    assert (svg, png) == again
    assert png.startswith(b"\x89PNG")
    text = svg.decode()
    assert all(f">{t}<" in text for t in payload["treatments"])


def test_graph_without_participants_sizes_by_trials() -> None:
    nodes = [{"treatment": "a", "n_trials": 2, "n_participants": None},
             {"treatment": "b", "n_trials": 1, "n_participants": None}]
    svg, _ = network_graph(nodes, [{"treat1": "a", "treat2": "b", "n_trials": 1}])
    assert b"<svg" in svg


def test_circle_layout_is_sorted_and_on_the_unit_circle() -> None:
    pos = circle_layout(["wl", "cbt", "cau"])
    assert list(pos) == ["cau", "cbt", "wl"]
    assert pos["cau"] == pytest.approx((0.0, 1.0))
    assert all(x * x + y * y == pytest.approx(1.0) for x, y in pos.values())


def test_forest_against_reference(payload: dict) -> None:
    svg, png = network_forest(payload["estimates"], "cau", title="versus care as usual")
    assert network_forest(payload["estimates"], "cau", title="versus care as usual") == (svg, png)
    assert b"cbt" in svg and png.startswith(b"\x89PNG")

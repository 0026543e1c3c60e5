"""The rule scripts/diagnostics/demo_regimes.py chooses the demo's regime by (validation only)."""
from __future__ import annotations

import pytest

from scripts.diagnostics import demo_regimes as D


def _result(ratios: dict) -> dict:
    out = {}
    for regime, rs in ratios.items():
        per = {f"e{i}": {"ratio": r} for i, r in enumerate(rs) if r is not None}
        complete = len(per) == len(rs)
        out[regime] = {"experiments": per, "complete": complete,
                       "qualifies": complete and max(rs) <= D.QUALIFY,
                       "score": sum(p["ratio"] for p in per.values()) / max(1, len(per))}
    return out


def test_a_qualifying_regime_wins_by_its_mean():
    res = _result({"a": [0.5, 0.79], "b": [0.7, 0.7], "c": [0.2, 0.9]})
    assert D.choose(res) == ("a", True)       # c has the lowest mean but does not qualify
    res = _result({"a": [0.5, 0.79], "b": [0.6, 0.6]})
    assert D.choose(res) == ("b", True)


@pytest.mark.parametrize("ratios, best", [
    ({"a": [0.5, 0.92], "b": [0.86, 0.86], "c": [0.89, 0.6]}, "b"),    # lowest worst ratio
    ({"a": [0.6, 0.86], "b": [0.86, 0.7]}, "a"),                       # tie on worst: mean
])
def test_without_a_qualifying_regime_the_worst_experiment_decides(ratios, best):
    assert D.choose(_result(ratios)) == (best, False)


def test_an_incomplete_regime_is_never_chosen():
    res = _result({"a": [0.1, None], "b": [0.9, 0.9]})
    assert D.choose(res) == ("b", False)
    assert D.choose(_result({"a": [0.1, None]})) == (None, False)

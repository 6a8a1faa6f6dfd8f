"""Offline promotion gates: non-inferiority, genre collapse, the artifact check, and their conjunction."""

from __future__ import annotations

import numpy as np
import pytest

from trending_assets.lib.evaluation import BASELINE, Comparison
from trending_assets.lib.gates import (
    GateResult,
    all_passed,
    artifact_gate,
    genre_collapse_gate,
    non_inferiority_gate,
)
from trending_assets.lib.registry import ArtifactError


def comparison(diff: float, low: float, high: float, reference: str = "xgboost-v1") -> Comparison:
    return Comparison(
        challenger="xgboost-v2", reference=reference, dataset="static_test", window_id="w1", metric="macro_f1",
        diff=diff, low=low, high=high, p_value=0.2, n_boot=1000, confidence=0.95, n=412,
    )


# -- non-inferiority -----------------------------------------------------------------------------------------

def test_a_slightly_worse_challenger_within_tolerance_passes():
    result = non_inferiority_gate(comparison(-0.012, -0.019, 0.007), tolerance=0.02)

    assert result.passed and result.name == "non_inferior_macro_f1"
    assert result.summary == (
        "macro F1 -0.012 [-0.019, +0.007] vs xgboost-v1 on 412 static_test movies; "
        "lower bound above -0.020 tolerance"
    )
    assert result.metadata["ci_low"] == -0.019 and result.metadata["tolerance"] == 0.02


def test_a_challenger_that_may_be_much_worse_fails():
    result = non_inferiority_gate(comparison(-0.012, -0.031, 0.007), tolerance=0.02)

    assert not result.passed
    assert "lower bound not above -0.020 tolerance" in result.summary


def test_against_the_baseline_a_zero_tolerance_asks_for_a_shown_improvement():
    unproven = non_inferiority_gate(comparison(0.01, -0.002, 0.02, reference=BASELINE), tolerance=0.0)
    better = non_inferiority_gate(comparison(0.05, 0.03, 0.07, reference=BASELINE), tolerance=0.0)

    assert not unproven.passed and better.passed
    assert better.summary.endswith("lower bound above +0.000 tolerance")
    assert f"vs {BASELINE}" in better.summary


# -- genre collapse ------------------------------------------------------------------------------------------

REFERENCE = {"drama": 0.70, "comedy": 0.60, "horror": 0.55, "western": 0.50}
SUPPORT = {"drama": 120, "comedy": 80, "horror": 30, "western": 3}


def test_small_drops_pass():
    candidate = {"drama": 0.72, "comedy": 0.50, "horror": 0.40, "western": 0.45}

    result = genre_collapse_gate(candidate, REFERENCE, SUPPORT)

    assert result.passed and result.name == "no_genre_collapse"
    assert result.metadata["n_judged"] == 3
    assert result.metadata["largest_drop_genre"] == "horror"
    assert result.metadata["largest_drop"] == pytest.approx(0.15)
    assert "3 genres with support >= 5 judged" in result.summary


def test_a_collapsed_genre_fails_and_is_named_with_both_scores():
    candidate = {"drama": 0.72, "comedy": 0.59, "horror": 0.10, "western": 0.45}

    result = genre_collapse_gate(candidate, REFERENCE, SUPPORT)

    assert not result.passed
    assert result.metadata["collapsed"] == "horror"
    assert "horror (0.100 vs 0.550)" in result.summary


def test_genres_under_min_support_or_unscored_are_not_judged():
    candidate = {"drama": 0.70, "comedy": 0.60, "horror": 0.55, "western": 0.0, "musical": 0.0}

    result = genre_collapse_gate(candidate, REFERENCE, {**SUPPORT, "musical": 40})

    assert result.passed  # western collapsed, but on 3 movies; musical has no reference score
    assert result.metadata["not_judged"] == "musical, western"
    assert not genre_collapse_gate({"western": 0.0}, REFERENCE, SUPPORT, min_support=3).passed


def test_nothing_judged_passes_and_says_so():
    result = genre_collapse_gate({"western": 0.0}, REFERENCE, {"western": 3})

    assert result.passed and "none was judged" in result.summary


# -- artifact ------------------------------------------------------------------------------------------------

def test_finite_probabilities_of_the_right_shape_pass():
    result = artifact_gate(lambda: np.full((8, 4), 0.25), n_rows=8, n_genres=4)

    assert result.passed and result.name == "artifact_loads_and_predicts"


def test_a_checksum_mismatch_becomes_a_failed_result_with_the_message():
    def check() -> np.ndarray:
        raise ArtifactError("artifact for xgboost-v2 has changed since it was registered")

    result = artifact_gate(check, n_rows=8, n_genres=4)

    assert not result.passed
    assert "ArtifactError: artifact for xgboost-v2 has changed since it was registered" in result.summary
    assert "changed since it was registered" in result.metadata["error"]


@pytest.mark.parametrize(
    ("predictions", "reason"),
    [
        (np.full((8, 3), 0.5), "shape (8, 3), expected (8, 4)"),
        (np.full((8, 4), np.nan), "32 NaN or infinite"),
        (np.full((8, 4), 1.5), "32 values outside [0, 1]"),
        (np.array(["not", "numbers"]), "ValueError"),
    ],
)
def test_malformed_predictions_fail(predictions, reason):
    result = artifact_gate(lambda: predictions, n_rows=8, n_genres=4)

    assert not result.passed and reason in result.summary


# -- all passed ----------------------------------------------------------------------------------------------

def test_all_passed_needs_every_gate_and_at_least_one():
    ok, failed = GateResult("a", True, "", {}), GateResult("b", False, "", {})

    assert all_passed([ok, ok]) and not all_passed([ok, failed]) and not all_passed([])

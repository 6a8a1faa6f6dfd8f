"""Paired bootstrap of the F1 difference: exactness against a naive loop, coverage, the gate, tiny inputs."""

from __future__ import annotations


import numpy as np
import pytest

from trending_assets.lib import stats
from trending_assets.lib.metrics import summary
from trending_assets.lib.stats import BootstrapResult, non_inferior, paired_bootstrap, resample_indices

PREVALENCE = np.array([0.1, 0.2, 0.3, 0.4])


def world(n: int, accuracy_a: float, accuracy_b: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models that get each cell right with the given accuracy, from one shared draw per cell.

    Sharing the draw makes the models' errors overlap (b fixes some of a's and makes none of its own), as for a
    challenger that improves on the champion.
    """
    rng = np.random.default_rng(seed)
    y_true = rng.random((n, PREVALENCE.size)) < PREVALENCE
    luck = rng.random(y_true.shape)
    return y_true, np.where(luck < accuracy_a, y_true, ~y_true), np.where(luck < accuracy_b, y_true, ~y_true)


def population_macro_f1(accuracy: float) -> float:
    """Macro F1 on infinitely many movies: per genre TP = pq, FP = (1 - p)(1 - q), FN = p(1 - q)."""
    tp, errors = PREVALENCE * accuracy, 1 - accuracy  # FP + FN = (1 - q) whatever the prevalence
    return float(np.mean(2 * tp / (2 * tp + errors)))


def naive_bootstrap(y_true, pred_a, pred_b, metric, n_boot, seed) -> np.ndarray:
    """The differences, one metric call per resample, on the indices paired_bootstrap draws."""
    return np.array([
        summary(y_true[rows], pred_b[rows])[metric] - summary(y_true[rows], pred_a[rows])[metric]
        for rows in np.concatenate(list(resample_indices(len(y_true), n_boot, seed)))
    ])


def test_identical_predictions_differ_by_exactly_zero():
    y_true, pred, _ = world(300, 0.8, 0.8, seed=1)

    for metric in ("macro_f1", "micro_f1"):
        result = paired_bootstrap(y_true, pred, pred, metric=metric, n_boot=200)
        assert (result.diff, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_clearly_better_challenger_has_an_interval_above_zero():
    y_true, champion, challenger = world(2000, 0.75, 0.9, seed=2)

    result = paired_bootstrap(y_true, champion, challenger)

    assert 0 < result.low <= result.diff <= result.high
    assert result.p_value == 0.0
    assert non_inferior(result, tolerance=0.0)
    reverse = paired_bootstrap(y_true, challenger, champion)
    assert reverse.high < 0 and reverse.diff == pytest.approx(-result.diff)
    assert not non_inferior(reverse, tolerance=0.01)


def test_the_95_percent_interval_covers_the_population_difference():
    truth = population_macro_f1(0.88) - population_macro_f1(0.85)

    covered = 0
    for seed in range(100):
        y_true, champion, challenger = world(400, 0.85, 0.88, seed=seed)
        result = paired_bootstrap(y_true, champion, challenger, n_boot=300, seed=seed)
        covered += result.low <= truth <= result.high

    assert covered >= 88


@pytest.mark.parametrize("metric", ["macro_f1", "micro_f1"])
def test_vectorised_bootstrap_equals_a_loop_of_metric_calls(metric, monkeypatch):
    monkeypatch.setattr(stats, "BLOCK_CELLS", 100)  # 3 resamples per block: the blocks must join up seamlessly
    y_true, pred_a, pred_b = world(30, 0.7, 0.8, seed=3)
    naive = naive_bootstrap(y_true, pred_a, pred_b, metric, n_boot=50, seed=7)

    for confidence in (0.5, 0.8, 0.95):
        result = paired_bootstrap(y_true, pred_a, pred_b, metric=metric, n_boot=50, confidence=confidence, seed=7)
        low, high = np.quantile(naive, [(1 - confidence) / 2, (1 + confidence) / 2])
        assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)
    observed = summary(y_true, pred_b)[metric] - summary(y_true, pred_a)[metric]
    assert result.diff == pytest.approx(observed, abs=1e-12)
    assert result.p_value == pytest.approx(min(1.0, 2 * np.mean(naive <= 0 if observed > 0 else naive >= 0)))


def test_a_seed_fixes_the_result():
    y_true, pred_a, pred_b = world(200, 0.8, 0.82, seed=4)

    assert paired_bootstrap(y_true, pred_a, pred_b, seed=5) == paired_bootstrap(y_true, pred_a, pred_b, seed=5)
    assert paired_bootstrap(y_true, pred_a, pred_b, seed=5) != paired_bootstrap(y_true, pred_a, pred_b, seed=6)


def test_tiny_inputs_give_a_clear_answer():
    nothing = np.zeros((1, 3), dtype=int)
    right, wrong = np.array([[1, 0, 0]]), np.array([[0, 0, 0]])

    assert paired_bootstrap(nothing, nothing, nothing, n_boot=20) == BootstrapResult(
        diff=0.0, low=0.0, high=0.0, p_value=1.0, n_boot=20, metric="macro_f1", confidence=0.95
    )
    one = paired_bootstrap(right, wrong, right, n_boot=20)
    assert (one.diff, one.low, one.high, one.p_value) == (1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="no rows to compare"):
        paired_bootstrap(nothing[:0], nothing[:0], nothing[:0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "accuracy"}, "metric 'accuracy' is not one of: macro_f1, micro_f1"),
        ({"n_boot": 0}, "n_boot must be at least 1; got 0"),
        ({"confidence": 95}, "confidence must be between 0 and 1"),
    ],
)
def test_bad_settings_are_refused_with_the_value(kwargs, message):
    labels = np.ones((3, 2), dtype=int)
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(labels, labels, labels, **kwargs)


def test_non_inferiority_gate_compares_the_lower_end_with_the_tolerance():
    result = BootstrapResult(diff=0.01, low=-0.01, high=0.03, p_value=0.4, n_boot=1000, metric="macro_f1",
                             confidence=0.95)

    assert non_inferior(result, tolerance=0.02)
    assert not non_inferior(result, tolerance=0.01)  # strictly above -tolerance
    assert not non_inferior(result, tolerance=0.0)
    with pytest.raises(ValueError, match="at least 0; got -0.01"):
        non_inferior(result, tolerance=-0.01)

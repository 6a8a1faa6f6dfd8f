"""Online metrics from feedback, the label-free F1 estimate, and the performance alarm."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.metrics import summary
from trending_assets.lib.performance import (
    PERFORMANCE_COLUMNS, Calibrator, Score, correction_f1, estimate_f1, estimate_rows, feedback_rates,
    performance_alarm,
)
from trending_assets.lib.warehouse import connect

GENRES = ("action", "comedy", "drama")
DAY1, DAY2 = date(2026, 1, 3), date(2026, 1, 4)


@pytest.fixture()
def con(tmp_path: Path):
    """A warehouse with the two feedback marts, as dbt builds them (only the columns read here)."""
    with connect(tmp_path / "warehouse.duckdb") as connection:
        connection.execute("CREATE SCHEMA marts")
        connection.execute("""CREATE TABLE marts.fct_genre_corrections (
            event_id VARCHAR, movie_id VARCHAR, corrected_genres VARCHAR[], model_version VARCHAR, event_date DATE)""")
        connection.execute("""CREATE TABLE marts.fct_feedback_events (
            event_id VARCHAR, movie_id VARCHAR, event_type VARCHAR, model_version VARCHAR, event_date DATE)""")
        yield connection


def predictions() -> pl.DataFrame:
    return pl.DataFrame({
        "model_version": ["v1", "v1", "v1"],
        "movie_id": ["m1", "m2", "m3"],
        "predicted_genres": [["action"], ["comedy", "drama"], ["drama"]],
    })


def corrections(con) -> pl.DataFrame:
    return con.sql("SELECT * FROM marts.fct_genre_corrections").pl()


def metric(rows: pl.DataFrame, name: str, day: date = DAY1, version: str = "v1") -> tuple[float, int]:
    row = rows.filter((pl.col("metric") == name) & (pl.col("day") == day) & (pl.col("model_version") == version))
    assert row.height == 1, f"expected one {name} row, got {row}"
    return row["value"][0], row["n"][0]


def test_correction_f1_scores_predictions_against_corrected_genres_per_version_and_day(con):
    con.execute("""INSERT INTO marts.fct_genre_corrections VALUES
        ('e1', 'm1', ['action'], 'v1', '2026-01-03'),
        ('e2', 'm2', ['drama'], 'v1', '2026-01-03'),
        ('e3', 'm3', ['comedy'], 'v1', '2026-01-04')""")
    rows = correction_f1(predictions(), corrections(con), GENRES)

    assert rows.columns == list(PERFORMANCE_COLUMNS)
    # Day 1: TP action, TP drama, FP comedy -> micro 2*2 / (2*2 + 1) = 0.8; macro over action, drama (comedy has
    # no support) = (1 + 1) / 2.
    assert metric(rows, "online_micro_f1") == (pytest.approx(0.8), 2)
    assert metric(rows, "online_macro_f1") == (pytest.approx(1.0), 2)
    assert metric(rows, "online_f1:comedy") == (0.0, 0)
    assert metric(rows, "online_f1:drama") == (1.0, 1)
    # Day 2: predicted drama, truly comedy: nothing right.
    assert metric(rows, "online_micro_f1", DAY2) == (0.0, 1)
    truth = np.array([[1, 0, 0], [0, 0, 1]])
    shown = np.array([[1, 0, 0], [0, 1, 1]])
    assert metric(rows, "online_micro_f1")[0] == pytest.approx(summary(truth, shown)["micro_f1"])


def test_unknown_versions_unscoreable_corrections_and_unknown_genres_are_left_out(con):
    con.execute("""INSERT INTO marts.fct_genre_corrections VALUES
        ('e1', 'm1', ['action', 'western'], 'v1', '2026-01-03'),
        ('e2', 'm1', ['action'], 'v9', '2026-01-03'),
        ('e3', 'm2', [], 'v1', '2026-01-03'),
        ('e4', 'm2', ['comedy'], NULL, '2026-01-03'),
        ('e5', 'm9', ['comedy'], 'v1', '2026-01-03')""")
    rows = correction_f1(predictions(), corrections(con), GENRES)

    assert set(rows["model_version"]) == {"v1"}
    assert metric(rows, "online_micro_f1") == (1.0, 1)


def test_no_corrections_give_no_rows(con):
    rows = correction_f1(predictions(), corrections(con), GENRES)
    assert rows.is_empty() and rows.columns == list(PERFORMANCE_COLUMNS)


def test_feedback_rates_count_thumbs_and_clicks_of_model_tagged_movies(con):
    con.execute("""INSERT INTO marts.fct_feedback_events VALUES
        ('e1', 'm1', 'impression', 'v1', '2026-01-03'), ('e2', 'm2', 'impression', 'v1', '2026-01-03'),
        ('e3', 'm3', 'impression', 'v1', '2026-01-03'), ('e4', 'm4', 'impression', 'v1', '2026-01-03'),
        ('e5', 'm1', 'click', 'v1', '2026-01-03'),
        ('e6', 'm1', 'thumbs_up', 'v1', '2026-01-03'), ('e7', 'm2', 'thumbs_down', 'v1', '2026-01-03'),
        ('e8', 'm3', 'thumbs_down', 'v1', '2026-01-03'),
        ('e9', 'm1', 'click', NULL, '2026-01-03'), ('e10', NULL, 'alert', 'v1', '2026-01-03'),
        ('e11', 'm5', 'impression', 'v2', '2026-01-04')""")
    rows = feedback_rates(con.sql("SELECT * FROM marts.fct_feedback_events").pl())

    assert metric(rows, "click_through") == (0.25, 4)
    assert metric(rows, "thumbs_down_rate") == (pytest.approx(2 / 3), 3)
    assert metric(rows, "click_through", DAY2, "v2") == (0.0, 1)
    # v2 got no thumbs: no rate rather than a rate of 0.
    assert rows.filter((pl.col("model_version") == "v2") & (pl.col("metric") == "thumbs_down_rate")).is_empty()


def test_feedback_rates_of_no_events_are_empty(con):
    assert feedback_rates(con.sql("SELECT * FROM marts.fct_feedback_events").pl()).is_empty()


def synthetic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities calibrated by construction: each label is drawn as 1 with exactly its probability."""
    probs = rng.beta([0.6, 1.0, 2.0], [2.0, 1.0, 1.5], size=(n, len(GENRES)))
    return probs, (rng.random(probs.shape) < probs).astype(np.int8)


def overconfident(probs: np.ndarray) -> np.ndarray:
    logit = np.log(probs / (1 - probs))
    return 1 / (1 + np.exp(-3 * logit))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimated_f1_of_a_calibrated_model_is_close_to_the_realised_f1(seed):
    rng = np.random.default_rng(seed)
    labeled_probs, labeled = synthetic(rng, 3000)
    probs, truth = synthetic(rng, 3000)
    decisions = (probs >= 0.5).astype(np.int8)
    realised = summary(truth, decisions)

    estimate = estimate_f1(Calibrator().fit(labeled_probs, labeled).transform(probs), decisions, GENRES)

    assert estimate.macro_f1 == pytest.approx(realised["macro_f1"], abs=0.05)
    assert estimate.micro_f1 == pytest.approx(realised["micro_f1"], abs=0.05)
    assert estimate.n == 3000


def test_calibration_repairs_the_estimate_of_an_overconfident_model():
    rng = np.random.default_rng(7)
    labeled_probs, labeled = synthetic(rng, 3000)
    probs, truth = synthetic(rng, 3000)
    shown, labeled_shown = overconfident(probs), overconfident(labeled_probs)
    decisions = (shown >= 0.5).astype(np.int8)
    realised = summary(truth, decisions)["macro_f1"]

    naive = estimate_f1(shown, decisions, GENRES).macro_f1
    calibrated = estimate_f1(Calibrator().fit(labeled_shown, labeled).transform(shown), decisions, GENRES).macro_f1

    assert naive - realised > 0.1, "an overconfident model's raw probabilities flatter it"
    assert calibrated == pytest.approx(realised, abs=0.05)


def test_calibrator_clips_outside_the_fitted_range_and_refuses_bad_input():
    calibrator = Calibrator().fit(np.array([[0.2], [0.4], [0.6], [0.8]]), np.array([[0], [0], [1], [1]]))
    assert calibrator.transform(np.array([[0.0], [1.0]])).ravel().tolist() == [0.0, 1.0]
    assert calibrator.transform(np.zeros((0, 1))).shape == (0, 1)
    with pytest.raises(ValueError, match="not fitted"):
        Calibrator().transform(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="at least 2"):
        Calibrator().fit(np.array([[0.5]]), np.array([[1]]))
    with pytest.raises(ValueError, match=r"\(movies, 1\)"):
        calibrator.transform(np.zeros((2, 3)))


def test_estimate_of_no_movies_is_zero_with_n_zero_and_becomes_rows():
    estimate = estimate_f1(np.zeros((0, 3)), np.zeros((0, 3)), GENRES)
    assert (estimate.macro_f1, estimate.n) == (0.0, 0)
    rows = estimate_rows("v1", DAY1, estimate)
    assert rows["metric"].to_list() == [
        "estimated_micro_f1", "estimated_macro_f1", "estimated_f1:action", "estimated_f1:comedy",
        "estimated_f1:drama",
    ]
    assert set(rows["n"]) == {0}


def test_alarm_fails_when_online_f1_is_below_the_floor():
    alarm = performance_alarm(Score(0.41, 120), 0.5, None, None, max_drop=0.05, min_n=30)
    assert not alarm.passed and not alarm.insufficient_data
    assert "online F1 0.410 on 120 corrections is below the floor 0.500" in alarm.summary


def test_alarm_fails_when_the_estimate_drops_more_than_allowed():
    alarm = performance_alarm(None, 0.5, Score(0.60, 500), Score(0.70, 400), max_drop=0.05, min_n=30)
    assert not alarm.passed
    assert "estimated F1 0.600 is +0.100 below the reference 0.700 (more than 0.050)" in alarm.summary
    assert alarm.metadata["estimated_drop"] == pytest.approx(0.1)


def test_alarm_passes_a_model_above_the_floor_with_a_small_drop():
    alarm = performance_alarm(Score(0.62, 80), 0.5, Score(0.67, 500), Score(0.70, 400), max_drop=0.05, min_n=30)
    assert alarm.passed and not alarm.insufficient_data
    assert "is at or above the floor" in alarm.summary and "(no more than 0.050)" in alarm.summary


@pytest.mark.parametrize("online, now, reference", [
    (None, None, None),
    (Score(0.0, 3), Score(0.1, 5), Score(0.9, 400)),
    (Score(0.0, 0), Score(0.1, 500), Score(0.9, 2)),
])
def test_tiny_samples_are_insufficient_data_never_an_alarm(online, now, reference):
    alarm = performance_alarm(online, 0.5, now, reference, max_drop=0.05, min_n=30)
    assert alarm.passed and alarm.insufficient_data
    assert alarm.summary.startswith("insufficient data:")


def test_a_tiny_online_sample_does_not_mask_a_real_estimated_drop():
    alarm = performance_alarm(Score(0.0, 2), 0.5, Score(0.5, 500), Score(0.7, 500), max_drop=0.05, min_n=30)
    assert not alarm.passed and not alarm.insufficient_data
    assert "2 corrections, fewer than 30" in alarm.summary

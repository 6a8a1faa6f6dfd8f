"""Assembling model performance: which version served a correction, online F1 of registry models, the label-free
estimate per day, and reading corrections and feedback from the marts."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trending_assets.lib import performance_report
from trending_assets.lib.performance import PERFORMANCE_SCHEMA, F1Estimate, Score
from trending_assets.lib.warehouse import connect

GENRES = ("action", "comedy", "drama")
DAY1, DAY2, DAY3 = date(2026, 1, 3), date(2026, 1, 4), date(2026, 1, 5)
CORRECTIONS_SCHEMA = {"model_version": pl.String, "movie_id": pl.String, "corrected_genres": pl.List(pl.String),
                      "event_date": pl.Date}
FEEDBACK_SCHEMA = {"model_version": pl.String, "movie_id": pl.String, "event_type": pl.String,
                   "event_date": pl.Date}


class OracleModel:
    """Knows every movie's genres (from its ``genres`` column): 0.9 for those, 0.1 for the rest."""

    genres = GENRES

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        probs = np.full((frame.height, len(self.genres)), 0.1)
        for i, names in enumerate(frame["genres"].to_list()):
            for name in names or ():
                if name in self.genres:
                    probs[i, self.genres.index(name)] = 0.9
        return probs


class ActionModel:
    """Says every movie is an action movie."""

    genres = GENRES

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.tile([0.8, 0.2, 0.2], (frame.height, 1))


class NoisyModel:
    """The truth blurred by seeded noise: right most of the time, never certain."""

    genres = GENRES

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        truth = OracleModel().predict_proba(frame)
        noise = np.random.default_rng(frame.height).normal(0, 0.3, truth.shape)
        return np.clip(truth + noise, 0.0, 1.0)


def movies(n: int, seed: int = 0, days: tuple[date, ...] = (DAY1,)) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    genres = [sorted(str(g) for g in rng.choice(GENRES, size=rng.integers(1, 3), replace=False)) for _ in range(n)]
    return pl.DataFrame({
        "movie_id": [f"m{i}" for i in range(n)],
        "genres": genres,
        "first_seen_date": [days[i % len(days)] for i in range(n)],
    }, schema={"movie_id": pl.String, "genres": pl.List(pl.String), "first_seen_date": pl.Date})


def corrections_of(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CORRECTIONS_SCHEMA, orient="row")


def metric(rows: pl.DataFrame, name: str, version: str, day: date) -> tuple[float, int]:
    row = rows.filter((pl.col("metric") == name) & (pl.col("model_version") == version) & (pl.col("day") == day))
    assert row.height == 1, f"expected one {name} row for {version} on {day}, got {row}"
    return row["value"][0], row["n"][0]


# --- served_by ---------------------------------------------------------------------------------------------------


def test_served_by_scores_unstamped_corrections_against_the_champion():
    frame = corrections_of([("v1", "m1", ["action"], DAY1), (None, "m2", ["drama"], DAY1)])
    served = performance_report.served_by(frame, "v9")
    assert served.select("model_version", "movie_id").rows() == [("v1", "m1"), ("v9", "m2")]
    assert served.columns == frame.columns


def test_served_by_drops_unstamped_corrections_without_a_champion():
    frame = corrections_of([("v1", "m1", ["action"], DAY1), (None, "m2", ["drama"], DAY1)])
    served = performance_report.served_by(frame, None)
    assert served.select("model_version", "movie_id").rows() == [("v1", "m1")]


# --- predictions and online F1 -----------------------------------------------------------------------------------


def test_predicted_genres_lists_the_models_genres_per_movie():
    frame = movies(5)
    assert performance_report.predicted_genres(OracleModel(), frame) == frame["genres"].to_list()
    assert performance_report.predicted_genres(ActionModel(), frame) == [["action"]] * 5
    assert performance_report.predicted_genres(OracleModel(), frame.clear()) == []


def test_online_f1_per_version_and_day():
    frame = movies(6)
    truth = dict(zip(frame["movie_id"], frame["genres"].to_list()))
    corrections = corrections_of(
        [("v1", m, truth[m], DAY1) for m in ("m0", "m1", "m2")]
        + [("v1", "m3", truth["m3"], DAY2)]
        + [("v2", m, truth[m], DAY1) for m in ("m4", "m5")]
        + [("v3", "m0", truth["m0"], DAY1)])  # v3 is not among the models: not scored
    rows = performance_report.online_f1(
        corrections, frame, {"v1": OracleModel(), "v2": ActionModel(), "v0": OracleModel()})

    assert rows.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert metric(rows, "online_micro_f1", "v1", DAY1) == (1.0, 3)
    assert metric(rows, "online_micro_f1", "v1", DAY2) == (1.0, 1)
    assert metric(rows, "online_macro_f1", "v1", DAY1)[0] == 1.0
    action_f1, n = metric(rows, "online_micro_f1", "v2", DAY1)
    assert n == 2 and action_f1 < 1.0
    assert set(rows["model_version"]) == {"v1", "v2"}  # v0 has no corrections, v3 no model


def test_online_f1_without_corrections_is_an_empty_typed_frame():
    rows = performance_report.online_f1(corrections_of([]), movies(3), {"v1": OracleModel()})
    assert rows.is_empty() and rows.schema == pl.Schema(PERFORMANCE_SCHEMA)
    none_known = performance_report.online_f1(corrections_of([("v1", "zz", ["drama"], DAY1)]), movies(3),
                                              {"v1": OracleModel()})
    assert none_known.is_empty()


# --- pooled ------------------------------------------------------------------------------------------------------


def perf(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA, orient="row")


def test_pooled_weights_days_by_their_n_from_since_on():
    rows = perf(("v1", DAY1, "online_micro_f1", 0.2, 100), ("v1", DAY2, "online_micro_f1", 0.5, 10),
                ("v1", DAY3, "online_micro_f1", 0.8, 30), ("v1", DAY3, "online_macro_f1", 0.0, 30),
                ("v2", DAY3, "online_micro_f1", 0.0, 50))
    assert performance_report.pooled(rows, "v1", "online_micro_f1", DAY2) == Score(
        pytest.approx((0.5 * 10 + 0.8 * 30) / 40), 40)
    everything = performance_report.pooled(rows, "v1", "online_micro_f1", DAY1)
    assert everything.n == 140 and everything.value == pytest.approx((20 + 5 + 24) / 140)


def test_pooled_is_none_without_rows():
    rows = perf(("v1", DAY1, "online_micro_f1", 0.2, 100), ("v1", DAY2, "online_micro_f1", 0.4, 0))
    assert performance_report.pooled(rows, "v1", "online_micro_f1", DAY2) is None  # only n = 0
    assert performance_report.pooled(rows, "v1", "online_micro_f1", DAY3) is None
    assert performance_report.pooled(rows, "v2", "online_micro_f1", DAY1) is None
    assert performance_report.pooled(rows, "v1", "thumbs_down_rate", DAY1) is None
    assert performance_report.pooled(perf(), "v1", "online_micro_f1", DAY1) is None


# --- the label-free estimate -------------------------------------------------------------------------------------


def test_calibrate_and_estimate_on_synthetic_movies():
    labeled, unlabeled = movies(200, seed=1), movies(80, seed=2)
    model = NoisyModel()
    estimate = performance_report.estimate(model, performance_report.calibrate(model, labeled), unlabeled)
    assert isinstance(estimate, F1Estimate)
    assert estimate.n == 80
    assert 0.0 < estimate.micro_f1 < 1.0
    assert 0.0 <= estimate.macro_f1 <= 1.0
    assert estimate.per_genre["genre"].to_list() == list(GENRES)


def test_a_perfectly_separating_model_is_estimated_perfect():
    oracle = OracleModel()
    estimate = performance_report.estimate(oracle, performance_report.calibrate(oracle, movies(50, seed=3)),
                                           movies(20, seed=4))
    assert estimate.n == 20
    assert estimate.micro_f1 == pytest.approx(1.0)


def test_calibrate_ignores_genres_the_model_does_not_know():
    labeled = movies(40, seed=5).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(["western"])).otherwise(pl.col("genres")).alias("genres"))
    calibrator = performance_report.calibrate(OracleModel(), labeled)
    assert calibrator.transform(np.full((2, 3), 0.9)).shape == (2, 3)


def test_estimated_rows_only_for_days_with_movies():
    model = NoisyModel()
    calibrator = performance_report.calibrate(model, movies(200, seed=1))
    scored = movies(30, seed=6, days=(DAY1, DAY3))
    rows = performance_report.estimated_rows("v1", model, calibrator, scored, [DAY1, DAY2, DAY3])

    assert rows.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert sorted(set(rows["day"])) == [DAY1, DAY3]
    assert set(rows["model_version"]) == {"v1"}
    value, n = metric(rows, "estimated_micro_f1", "v1", DAY1)
    assert n == 15 and 0.0 <= value <= 1.0
    assert metric(rows, "estimated_macro_f1", "v1", DAY3)[1] == 15
    assert {f"estimated_f1:{g}" for g in GENRES} <= set(rows["metric"])
    assert performance_report.estimated_rows("v1", model, calibrator, scored, [DAY2]).is_empty()
    assert performance_report.estimated_rows("v1", model, calibrator, scored, []).is_empty()


def test_recent_days_end_on_the_latest_oldest_first():
    assert performance_report.recent_days(DAY3, 3) == [DAY1, DAY2, DAY3]
    assert performance_report.recent_days(DAY3, 1) == [DAY3]
    assert performance_report.recent_days(DAY3, 7)[0] == DAY3 - timedelta(days=6)
    assert performance_report.recent_days(None, 7) == []


# --- reading the marts -------------------------------------------------------------------------------------------


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def test_without_marts_corrections_and_feedback_are_empty_with_their_columns(con):
    corrections = performance_report.corrections(con, DAY1)
    assert corrections.is_empty() and corrections.schema == pl.Schema(CORRECTIONS_SCHEMA)
    feedback = performance_report.feedback(con, DAY1)
    assert feedback.is_empty() and feedback.schema == pl.Schema(FEEDBACK_SCHEMA)


@pytest.fixture()
def marts(con):
    """The two feedback marts, as dbt builds them (only the columns read here)."""
    con.execute("CREATE SCHEMA marts")
    con.execute("""CREATE TABLE marts.fct_genre_corrections (
        event_id VARCHAR, movie_id VARCHAR, corrected_genres VARCHAR[], model_version VARCHAR, event_date DATE)""")
    con.execute("""INSERT INTO marts.fct_genre_corrections VALUES
        ('e1', 'm1', ['action'], 'v1', '2026-01-03'),
        ('e2', 'm2', ['drama', 'comedy'], NULL, '2026-01-04'),
        ('e3', 'm3', ['comedy'], 'v2', '2026-01-05')""")
    con.execute("""CREATE TABLE marts.fct_feedback_events (
        event_id VARCHAR, movie_id VARCHAR, event_type VARCHAR, model_version VARCHAR, event_date DATE)""")
    con.execute("""INSERT INTO marts.fct_feedback_events VALUES
        ('f1', 'm1', 'impression', 'v1', '2026-01-03'),
        ('f2', 'm1', 'click', 'v1', '2026-01-04'),
        ('f3', 'm2', 'thumbs_up', NULL, '2026-01-04'),
        ('f4', 'm2', 'thumbs_down', 'v2', '2026-01-05'),
        ('f5', 'm2', 'genre_correction', 'v2', '2026-01-05'),
        ('f6', NULL, 'alert', NULL, '2026-01-05'),
        ('f7', 'm3', 'view', 'v1', '2026-01-05'),
        ('f8', 'm3', 'rating', 'v1', '2026-01-05')""")
    return con


def test_corrections_are_read_from_a_day_on(marts):
    since_day2 = performance_report.corrections(marts, DAY2)
    assert since_day2.schema == pl.Schema(CORRECTIONS_SCHEMA)
    assert since_day2.sort("movie_id").rows() == [
        (None, "m2", ["drama", "comedy"], DAY2), ("v2", "m3", ["comedy"], DAY3)]
    assert performance_report.corrections(marts, DAY1).height == 3
    assert performance_report.corrections(marts, DAY3 + timedelta(days=1)).is_empty()


def test_feedback_keeps_impressions_clicks_and_thumbs_and_marks_unstamped_ones(marts):
    rows = performance_report.feedback(marts, DAY1)
    assert rows.schema == pl.Schema(FEEDBACK_SCHEMA)
    assert sorted(rows.rows()) == [
        ("unattributed", "m2", "thumbs_up", DAY2),
        ("v1", "m1", "click", DAY2),
        ("v1", "m1", "impression", DAY1),
        ("v2", "m2", "thumbs_down", DAY3),
    ]
    recent = performance_report.feedback(marts, DAY2)
    assert sorted(recent["event_type"]) == ["click", "thumbs_down", "thumbs_up"]
    assert performance_report.feedback(marts, DAY3)["event_type"].to_list() == ["thumbs_down"]

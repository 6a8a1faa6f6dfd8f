"""Evaluation rows, the prevalence baseline, paired comparisons, and their DuckDB store."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import polars as pl
import pytest

from trending_assets.lib import evaluation_store as store
from trending_assets.lib.evaluation import (
    BASELINE,
    Comparison,
    baseline_predictions,
    compare,
    evaluate,
    per_genre_f1,
    per_genre_support,
)
from trending_assets.lib.metrics import EVALUATION_COLUMNS, genre_scores, summary

GENRES = ["drama", "comedy", "horror", "western"]
Y_TRUE = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
Y_PRED = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]])
FRAME = pl.DataFrame({
    "release_year": [1994, 1999, 2005, None],
    "source": ["tmdb", "tmdb", "imdb", "imdb"],
    "overview": ["a quiet drama", None, " ".join(["word"] * 30), "x"],
})
MONDAY, TUESDAY = datetime(2024, 5, 6, 9), datetime(2024, 5, 7, 9)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield connection
    connection.close()


def rows(model_version: str = "xgboost-v1", y_pred: np.ndarray = Y_PRED) -> pl.DataFrame:
    return evaluate(model_version, "static_test", FRAME, Y_TRUE, y_pred, GENRES)


def world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a reference right on 70% of cells and a challenger right on 95%, from one shared draw per cell."""
    rng = np.random.default_rng(seed)
    y_true = rng.random((n, 4)) < np.array([0.2, 0.3, 0.4, 0.5])
    luck = rng.random(y_true.shape)
    return y_true, np.where(luck < 0.7, y_true, ~y_true), np.where(luck < 0.95, y_true, ~y_true)


def value(frame: pl.DataFrame, slice: str, slice_value: str, metric: str) -> float:
    return frame.filter(
        (pl.col("slice") == slice) & (pl.col("slice_value") == slice_value) & (pl.col("metric") == metric)
    )["value"].item()


# -- evaluate ------------------------------------------------------------------------------------------------

def test_evaluate_rows_are_long_with_the_evaluation_columns():
    frame = rows()

    assert tuple(frame.columns) == EVALUATION_COLUMNS
    assert frame["model_version"].unique().to_list() == ["xgboost-v1"]
    assert frame["dataset"].unique().to_list() == ["static_test"]
    assert set(frame["slice"]) == {"all", "release_decade", "source", "overview_length", "genre"}
    assert "n" not in set(frame["metric"])  # n is a column on every row, not a metric row
    assert frame.select("slice", "slice_value", "metric").is_duplicated().sum() == 0
    overall = summary(Y_TRUE, Y_PRED)
    assert value(frame, "all", "all", "macro_f1") == pytest.approx(overall["macro_f1"])
    assert frame.filter(pl.col("slice") == "all")["n"].unique().to_list() == [4]
    imdb = frame.filter((pl.col("slice") == "source") & (pl.col("slice_value") == "imdb"))
    assert imdb["n"].unique().to_list() == [2]


def test_per_genre_rows_match_genre_scores():
    frame = rows()
    expected = genre_scores(Y_TRUE, Y_PRED, GENRES)

    assert per_genre_f1(frame, "static_test") == dict(zip(GENRES, expected["f1"].to_list()))
    assert per_genre_support(frame, "static_test") == dict(zip(GENRES, expected["support"].to_list()))
    assert value(frame, "genre", "drama", "recall") == 0.5
    assert value(frame, "genre", "horror", "precision") == 0.5
    assert frame.filter(pl.col("slice") == "genre")["n"].unique().to_list() == [4]
    assert per_genre_f1(frame, "backtest") == {}


def test_per_genre_f1_refuses_rows_of_two_versions():
    with pytest.raises(ValueError, match="one model version"):
        per_genre_f1(pl.concat([rows("xgboost-v1"), rows("xgboost-v2")]), "static_test")


# -- baseline ------------------------------------------------------------------------------------------------

def test_baseline_predicts_the_common_genres_for_every_movie():
    train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0]])

    predictions = baseline_predictions(train, n_rows=3)

    assert predictions.shape == (3, 4) and predictions.dtype.kind == "i"
    assert predictions.tolist() == [[1, 1, 1, 0]] * 3  # prevalence 0.75, 0.5, 0.5, 0


def test_baseline_always_predicts_at_least_the_most_frequent_genre():
    rare = np.zeros((10, 3), dtype=int)
    rare[:2, 1] = 1
    rare[0, 2] = 1

    assert baseline_predictions(rare, n_rows=2).tolist() == [[0, 1, 0], [0, 1, 0]]
    assert baseline_predictions(np.zeros((5, 3)), n_rows=4).sum(axis=1).min() == 1


def test_baseline_needs_training_labels():
    with pytest.raises(ValueError, match="non-empty"):
        baseline_predictions(np.zeros((0, 3)), n_rows=2)


# -- compare -------------------------------------------------------------------------------------------------

def test_a_clearly_better_challenger_has_a_positive_diff_and_interval():
    y_true, reference, challenger = world(800, seed=3)

    comparisons = compare("xgboost-v2", "xgboost-v1", "static_test", "w1", y_true, reference, challenger, n_boot=300)

    assert [c.metric for c in comparisons] == ["macro_f1", "micro_f1"]
    for c in comparisons:
        assert (c.challenger, c.reference, c.window_id, c.n, c.n_boot) == ("xgboost-v2", "xgboost-v1", "w1", 800, 300)
        assert 0 < c.low <= c.diff <= c.high
    backwards = compare("xgboost-v1", "xgboost-v2", "static_test", "w1", y_true, challenger, reference, n_boot=300)
    assert backwards[0].diff == pytest.approx(-comparisons[0].diff) and backwards[0].high < 0


# -- store ---------------------------------------------------------------------------------------------------

def test_writing_twice_replaces_instead_of_duplicating(con):
    first = rows()
    assert store.write_evaluation(con, first, "w1", MONDAY) == first.height

    perfect = rows(y_pred=Y_TRUE)
    store.write_evaluation(con, perfect, "w1", TUESDAY)

    stored = con.execute("SELECT count(*) FROM ml.evaluations").fetchall()[0][0]
    assert stored == first.height
    read = store.read_evaluation(con, "xgboost-v1", "static_test")
    assert value(read, "all", "all", "macro_f1") == 1.0
    assert read["evaluated_at"].unique().to_list() == [TUESDAY]


def test_read_evaluation_returns_the_latest_window_of_each_dataset(con):
    store.write_evaluation(con, rows(y_pred=Y_TRUE), "w-old", MONDAY)
    store.write_evaluation(con, rows(), "w-new", TUESDAY)
    backtest = rows().with_columns(pl.lit("backtest").alias("dataset"))
    store.write_evaluation(con, backtest, "w-back", MONDAY)
    store.write_evaluation(con, rows("xgboost-v2"), "w-newest", datetime(2024, 5, 8))

    read = store.read_evaluation(con, "xgboost-v1")

    windows = dict(read.select("dataset", "window_id").unique().iter_rows())
    assert windows == {"static_test": "w-new", "backtest": "w-back"}
    assert read.height == 2 * rows().height
    assert per_genre_f1(read, "static_test") == per_genre_f1(rows(), "static_test")
    only_static = store.read_evaluation(con, "xgboost-v1", "static_test")
    assert only_static["window_id"].unique().to_list() == ["w-new"]
    assert set(EVALUATION_COLUMNS) <= set(only_static.columns)


def test_comparisons_round_trip_and_replace(con):
    y_true, reference, challenger = world(200, seed=4)
    old = compare("xgboost-v2", "xgboost-v1", "static_test", "w1", y_true, reference, challenger, n_boot=50)
    new = compare("xgboost-v2", "xgboost-v1", "static_test", "w2", y_true, reference, reference, n_boot=50)
    vs_baseline = compare("xgboost-v2", BASELINE, "static_test", "w2", y_true, reference, challenger, n_boot=50)

    store.write_comparisons(con, old, MONDAY)
    store.write_comparisons(con, old, MONDAY)
    store.write_comparisons(con, new + vs_baseline, TUESDAY)

    assert con.execute("SELECT count(*) FROM ml.model_comparisons").fetchall()[0][0] == 6
    read = store.read_comparisons(con, "xgboost-v2")
    assert sorted(read, key=lambda c: (c.reference, c.metric)) == sorted(
        vs_baseline + new, key=lambda c: (c.reference, c.metric)
    )
    assert all(isinstance(c, Comparison) for c in read)


def test_readers_return_empty_when_nothing_was_stored(con):
    assert store.read_evaluation(con, "xgboost-v1").is_empty()
    assert set(EVALUATION_COLUMNS) <= set(store.read_evaluation(con, "xgboost-v1").columns)
    assert store.read_comparisons(con, "xgboost-v1") == []
    store.ensure_schema(con)
    assert store.read_evaluation(con, "xgboost-v1", "static_test").is_empty()

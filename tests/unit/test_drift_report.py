"""The drift report: reference/current split of first scrapes, and the five signals' verdicts."""

from __future__ import annotations

import zlib
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from trending_assets.lib import drift_report
from trending_assets.lib.drift import LONG_SCHEMA, DatasetDrift, FeatureDrift

START = date(2026, 1, 1)
WORDS = tuple(f"word{i}" for i in range(60))
GENRE_MIX = {"action": 0.3, "comedy": 0.3, "drama": 0.25, "horror": 0.15}
SHIFTED_MIX = {"action": 0.05, "comedy": 0.05, "drama": 0.3, "horror": 0.6}
SCHEMA = {
    "movie_id": pl.String, "title": pl.String, "overview": pl.String, "genres": pl.List(pl.String),
    "release_year": pl.Int64, "source": pl.String, "language": pl.String, "popularity": pl.Float64,
    "vote_average": pl.Float64, "vote_count": pl.Int64, "runtime_minutes": pl.Int64, "first_seen_date": pl.Date,
}


def movies(n: int, seed: int, prefix: str, *, first_day: date = START, days: int = 10, shift: bool = False,
           genre_mix: dict[str, float] = GENRE_MIX) -> pl.DataFrame:
    """``n`` movies shaped like ``drift_report.first_scrapes``; ``shift`` moves every numeric column far."""
    rng = np.random.default_rng(seed)
    names, weights = list(genre_mix), np.array(list(genre_mix.values()))
    genres = [[str(g) for g in rng.choice(names, size=rng.integers(1, 3), replace=False, p=weights)]
              for _ in range(n)]
    shifted = 1.0 if shift else 0.0
    return pl.DataFrame({
        "movie_id": [f"{prefix}{i}" for i in range(n)],
        "title": [" ".join(rng.choice(WORDS, 2)) for _ in range(n)],
        "overview": [" ".join(rng.choice(WORDS, 12)) for _ in range(n)],
        "genres": genres,
        "release_year": rng.integers(1990, 2020, n) + int(30 * shifted),
        "source": rng.choice(["tmdb", "imdb"], n, p=[0.7, 0.3]),
        "language": rng.choice(["en", "fr", "es"], n, p=[0.6, 0.2, 0.2]),
        "popularity": rng.lognormal(1.0 + 3 * shifted, 0.5, n),
        "vote_average": np.clip(rng.normal(6.0 + 2.5 * shifted, 1.0, n), 0, 10),
        "vote_count": rng.integers(10, 500, n) * (1 + 20 * int(shifted)),
        "runtime_minutes": rng.integers(80, 140, n) + int(90 * shifted),
        "first_seen_date": [first_day + timedelta(days=int(d)) for d in rng.integers(0, days, n)],
    }, schema=SCHEMA)


def reference() -> pl.DataFrame:
    return movies(300, seed=1, prefix="r")


def current(**kwargs) -> pl.DataFrame:
    return movies(150, seed=2, prefix="c", first_day=START + timedelta(days=20), days=3, **kwargs)


def predict_genres(frame: pl.DataFrame) -> list[list[str]]:
    """A fake champion that predicts exactly the scraped genres."""
    return [list(g) for g in frame["genres"].to_list()]


def predict_by_side(frame: pl.DataFrame) -> list[list[str]]:
    """A fake champion whose predictions move although the labels do not: drama for new ("c") movies."""
    return [["drama"] if m.startswith("c") else ["action"] for m in frame["movie_id"].to_list()]


def hashing_embedder(texts: list[str]) -> np.ndarray:
    """A deterministic bag-of-words embedder: each word adds 1 to a crc32-chosen coordinate of 16."""
    vectors = np.zeros((len(texts), 16))
    for i, text in enumerate(texts):
        for word in text.split():
            vectors[i, zlib.crc32(word.encode()) % 16] += 1.0
    return vectors


# Each build trains domain classifiers (seconds): the reports are built once per module and shared.
@pytest.fixture(scope="module")
def same() -> drift_report.DriftReport:
    return drift_report.build(reference(), current())


@pytest.fixture(scope="module")
def numeric_shift() -> drift_report.DriftReport:
    return drift_report.build(reference(), current(shift=True), max_reference_rows=100)


@pytest.fixture(scope="module")
def genre_shift() -> drift_report.DriftReport:
    return drift_report.build(reference(), current(genre_mix=SHIFTED_MIX), predict=predict_genres)


@pytest.fixture(scope="module")
def full() -> drift_report.DriftReport:
    """Every signal: a champion whose predictions move while the labels do not, and an embedder."""
    return drift_report.build(reference(), current(), predict=predict_by_side, embed=hashing_embedder)


# --- split -------------------------------------------------------------------------------------------------------


def frame_of(rows: list[tuple[str, date]]) -> pl.DataFrame:
    base = movies(len(rows), seed=0, prefix="x")
    return base.with_columns(pl.Series("movie_id", [r[0] for r in rows]),
                             pl.Series("first_seen_date", [r[1] for r in rows], pl.Date))


def test_split_takes_the_champions_period_as_reference_and_the_newest_days_after_it_as_current():
    day = START
    catalogue = frame_of([("a", day), ("b", day + timedelta(days=1)), ("c", day + timedelta(days=5)),
                          ("d", day + timedelta(days=8)), ("e", day + timedelta(days=9)),
                          ("f", day + timedelta(days=9))])
    ref, cur = drift_report.split(catalogue, day + timedelta(days=1), day + timedelta(days=5), current_days=2)

    assert sorted(ref["movie_id"]) == ["b", "c"]  # "a" was first seen before the period
    # the newest day is day+9; two days: day+8 and day+9
    assert sorted(cur["movie_id"]) == ["d", "e", "f"]
    assert cur.columns == catalogue.columns

    # a wide current window never reaches back into the reference period
    _, wider = drift_report.split(catalogue, None, day + timedelta(days=5), current_days=30)
    assert sorted(wider["movie_id"]) == ["d", "e", "f"]
    everything_before, _ = drift_report.split(catalogue, None, day + timedelta(days=5), current_days=1)
    assert sorted(everything_before["movie_id"]) == ["a", "b", "c"]
    # nothing newer than the period: no current data
    _, none = drift_report.split(catalogue, None, day + timedelta(days=9), current_days=2)
    assert none.is_empty()


@pytest.mark.parametrize("days", [0, -3])
def test_split_refuses_fewer_than_one_current_day(days):
    with pytest.raises(ValueError, match="current_days must be at least 1"):
        drift_report.split(frame_of([("a", START)]), None, START, current_days=days)


def test_split_of_no_movies_gives_two_empty_frames_with_the_columns():
    empty = frame_of([]).clear()
    ref, cur = drift_report.split(empty, None, START, current_days=3)
    assert ref.is_empty() and cur.is_empty()
    assert cur.columns == ref.columns == list(SCHEMA)


# --- build -------------------------------------------------------------------------------------------------------


def test_same_distribution_drifts_nowhere(same):
    assert (same.reference_rows, same.current_rows) == (300, 150)
    assert isinstance(same.signals["data"], DatasetDrift)
    assert same.signals["data"].n_judged == 8  # 5 numeric, 2 categorical, the overview text
    assert same.drifted("data") is False
    assert same.drifted("label") is False
    assert same.drift_detected is False
    assert same.current_start == START + timedelta(days=20)
    assert same.current_end == START + timedelta(days=22)


def test_shifting_most_numeric_columns_drifts_the_data(numeric_shift):
    data = numeric_shift.signals["data"]
    drifted = {f.feature for f in data.features if f.drifted}
    assert {"release_year", "popularity", "vote_average", "vote_count", "runtime_minutes"} <= drifted
    assert numeric_shift.drifted("data") is True
    assert numeric_shift.drift_detected is True
    assert numeric_shift.drifted("label") is False


def test_a_shifted_genre_mix_drifts_the_labels(same, genre_shift):
    label = genre_shift.signals["label"]
    assert isinstance(label, FeatureDrift)
    assert (label.feature, label.kind) == ("label genres", "categorical")
    assert label.p_value is not None and label.p_value < label.threshold
    assert genre_shift.drifted("label") is True
    assert genre_shift.drift_detected is True
    assert same.signals["label"].p_value >= same.signals["label"].threshold


def test_prediction_drift_runs_only_with_a_champion(same, genre_shift):
    assert "prediction" not in same.signals
    assert same.drifted("prediction") is None
    assert "prediction drift not computed (no champion)" in same.notes

    prediction = genre_shift.signals["prediction"]
    assert (prediction.feature, prediction.kind) == ("predicted genres", "categorical")
    # the fake champion predicts the scraped genres: its mix moved with theirs, counted per genre
    assert prediction.drifted is True
    assert prediction.n_reference == genre_shift.signals["label"].n_reference
    assert not any("prediction" in note for note in genre_shift.notes)


def test_prediction_drift_alone_is_reported_but_does_not_count_as_drift(full):
    assert full.drifted("prediction") is True
    assert full.drifted("label") is False
    assert full.drifted("data") is False
    assert full.drift_detected is False


def test_embedding_drift_runs_only_with_an_embedder(same, full):
    assert "embedding" not in same.signals
    assert "embedding drift not computed (no embedder)" in same.notes

    embedding = full.signals["embedding"]
    assert embedding.kind == "embedding"
    assert embedding.statistic is not None and 0.0 <= embedding.statistic <= 1.0
    assert embedding.drifted is False
    assert "mean_embedding_distance" in embedding.extras
    assert full.notes == ()


def test_the_vocabulary_signal_is_a_text_verdict(same):
    vocabulary = same.signals["vocabulary"]
    assert isinstance(vocabulary, FeatureDrift)
    assert vocabulary.kind == "text"
    assert vocabulary.n_reference == 300 and vocabulary.n_current == 150


def test_an_empty_current_reports_insufficient_data_without_failing():
    ref = reference()
    report = drift_report.build(ref, ref.clear(), predict=predict_genres, embed=hashing_embedder)
    assert report.current_rows == 0
    assert (report.current_start, report.current_end) == (None, None)
    assert report.drifted("data") is None
    assert report.drifted("label") is None
    assert report.drift_detected is False
    assert all(report.drifted(signal) is None for signal in report.signals)
    assert report.summary().height == len(report.signals)


def test_signals_follow_the_documented_order_and_long_rows_come_in_one_block_per_signal(full):
    report = full
    assert list(report.signals) == list(drift_report.SIGNALS)

    rows = report.long_rows("r1")
    assert "signal" in rows.columns
    assert {c: rows.schema[c] for c in LONG_SCHEMA} == LONG_SCHEMA
    assert set(rows["report_id"]) == {"r1"}
    # contiguous blocks, in the signals' order
    blocks = rows.select(pl.col("signal").rle()).unnest("signal")
    assert blocks["value"].to_list() == list(report.signals)
    # the data block holds every feature plus the dataset's share rule
    data = rows.filter(pl.col("signal") == "data")
    assert set(data["feature"]) == {f.feature for f in report.signals["data"].features} | {"dataset"}
    assert set(data.filter(pl.col("feature") == "dataset")["metric"]) == {"share_drifted", "n_judged", "n_drifted"}
    assert set(rows.filter(pl.col("signal") == "label")["feature"]) == {"label genres"}
    assert set(rows.filter(pl.col("signal") == "embedding")["kind"]) == {"embedding"}


def test_summary_has_a_row_per_signal_and_features_a_row_per_feature(genre_shift):
    report = genre_shift
    summary = report.summary()
    assert summary["signal"].to_list() == list(report.signals) == ["data", "vocabulary", "prediction", "label"]
    label = summary.row(by_predicate=pl.col("signal") == "label", named=True)
    assert label["drifted"] is True
    assert label["value"] == report.signals["label"].p_value
    data = summary.row(by_predicate=pl.col("signal") == "data", named=True)
    assert data["value"] == report.signals["data"].share_drifted
    assert data["test"] == "share of 8 features drifted"

    features = report.features()
    expected = sum(len(v.features) if isinstance(v, DatasetDrift) else 1 for v in report.signals.values())
    assert features.height == expected == 8 + len(report.signals) - 1
    assert features.filter(pl.col("signal") == "data")["feature"].to_list() == [
        f.feature for f in report.signals["data"].features]
    assert features.filter(pl.col("signal") == "label")["drifted"].to_list() == [True]


def test_an_empty_report_still_has_typed_long_rows_summary_and_features():
    report = drift_report.DriftReport(0, 0, None, None, {})
    assert report.long_rows("r").is_empty()
    assert set(LONG_SCHEMA) | {"signal"} == set(report.long_rows("r").columns)
    assert report.summary().is_empty() and report.features().is_empty()
    assert report.drift_detected is False


def test_a_large_reference_is_sampled_for_every_signal_and_the_notes_say_so(same, numeric_shift):
    assert not any("seeded sample" in note for note in same.notes)
    report = numeric_shift
    assert "every signal uses 100 of 300 reference movies (seeded sample)" in report.notes
    assert report.reference_rows == 100
    # the tabular tests see the sample too, so a reference of at most 1000 rows keeps them on KS / chi-squared
    popularity = next(f for f in report.signals["data"].features if f.feature == "popularity")
    assert popularity.n_reference == 100 and popularity.test == "ks"
    assert report.signals["vocabulary"].n_reference == 100
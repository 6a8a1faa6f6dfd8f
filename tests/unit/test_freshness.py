"""The value-of-freshness experiment: age buckets, equal-sized models per bucket, and the advice it gives."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.features import FeatureSpec
from trending_assets.lib.freshness import (
    INSUFFICIENT,
    MEANINGFUL_DROP,
    OK,
    RESULT_SCHEMA,
    AgeBucket,
    FreshnessPlan,
    describe_plan,
    plan_buckets,
    retrain_advice,
    run_experiment,
)
from trending_assets.lib.xgb_trainer import XGBConfig

EVAL_START = date(2024, 4, 1)
# The world's words for each genre change 45 days before EVAL_START: the newest bucket holds only new words,
# the oldest only old ones, and the movies scored use the new ones.
VOCABULARY_CHANGE = EVAL_START - timedelta(days=45)
OLD_WORDS = {
    "action": ["explosion", "chase"], "comedy": ["laugh", "prank"],
    "horror": ["ghost", "scream"], "romance": ["love", "kiss"],
}
NEW_WORDS = {
    "action": ["drone", "parkour"], "comedy": ["meme", "cringe"],
    "horror": ["glitch", "livestream"], "romance": ["swipe", "match"],
}
GENRES = tuple(OLD_WORDS)
FILLER = [f"filler{i}" for i in range(200)]
CONFIG = XGBConfig(n_rounds=15, max_depth=3, eta=0.3, nthread=1, features=FeatureSpec(n_hash_features=2**10))


def movies(days: range, per_day: int, prefix: str, seed: int) -> pl.DataFrame:
    """``per_day`` movies first seen on each of ``days`` (days before EVAL_START; negative for after it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for days_before in days:
        seen = EVAL_START - timedelta(days=days_before)
        vocabulary = NEW_WORDS if seen >= VOCABULARY_CHANGE else OLD_WORDS
        for i in range(per_day):
            chosen = [str(g) for g in rng.choice(GENRES, size=int(rng.integers(1, 3)), replace=False)]
            words = [str(rng.choice(vocabulary[g])) for g in chosen for _ in range(2)] + list(rng.choice(FILLER, 6))
            rng.shuffle(words)
            rows.append({
                "movie_id": f"{prefix}{days_before}-{i}",
                "title": f"Movie {i}",
                "overview": " ".join(words),
                "genres": chosen,
                "first_seen_date": seen,
                "release_year": 2024,
                "source": "tmdb",
                "language": "en",
                "popularity": float(rng.exponential(10)),
                "vote_count": int(rng.integers(0, 500)),
            })
    return pl.DataFrame(rows, schema_overrides={"genres": pl.List(pl.String)})


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    """90 days, busier lately: 120, 90 and 60 movies in the three 30-day buckets, newest first."""
    return pl.concat([
        movies(range(1, 31), 4, "a", seed=1),
        movies(range(31, 61), 3, "b", seed=2),
        movies(range(61, 91), 2, "c", seed=3),
    ])


@pytest.fixture(scope="module")
def newest() -> pl.DataFrame:
    return movies(range(0, -10, -1), 10, "n", seed=4)


@pytest.fixture(scope="module")
def table(history, newest) -> pl.DataFrame:
    buckets, _ = plan_buckets(history, EVAL_START)
    return run_experiment(history, newest, buckets, CONFIG)


def results(*rows: tuple[str, date, float | None]) -> pl.DataFrame:
    """A run_experiment-shaped table from (label, end, macro F1 or None for an insufficient bucket), newest first."""
    return pl.DataFrame(
        [
            {
                "label": label, "start": end - timedelta(days=29), "end": end, "age_days_mid": 15.0 + 30 * i,
                "train_rows": 60 if macro is not None else 5, "eval_rows": 100, "micro_f1": macro, "macro_f1": macro,
                "status": OK if macro is not None else INSUFFICIENT, "seconds": 0.1 if macro is not None else None,
            }
            for i, (label, end, macro) in enumerate(rows)
        ],
        schema=RESULT_SCHEMA,
    )


NEWEST, MIDDLE, OLDEST = (
    ("0-30 days old", date(2024, 3, 31)), ("30-60 days old", date(2024, 3, 1)), ("60-90 days old", date(2024, 1, 31))
)


# -- planning ----------------------------------------------------------------------------------------------

def test_buckets_go_back_from_the_day_before_eval_start(history):
    buckets, notes = plan_buckets(history, EVAL_START)
    assert buckets == [
        AgeBucket("0-30 days old", date(2024, 3, 2), date(2024, 3, 31)),
        AgeBucket("30-60 days old", date(2024, 2, 1), date(2024, 3, 1)),
        AgeBucket("60-90 days old", date(2024, 1, 2), date(2024, 1, 31)),
    ]
    assert notes == []


def test_a_short_history_shrinks_the_buckets_and_says_so(history, newest):
    unlabeled_long_ago = movies(range(200, 201), 1, "u", seed=5).with_columns(
        pl.lit([], dtype=pl.List(pl.String)).alias("genres")
    )
    # Unlabeled movies and movies from eval_start on are not history.
    frame = pl.concat([history.filter(pl.col("first_seen_date") >= EVAL_START - timedelta(days=45)),
                       unlabeled_long_ago, newest])
    buckets, notes = plan_buckets(frame, EVAL_START, bucket_days=30, n_buckets=3)
    assert [b.label for b in buckets] == ["0-15 days old", "15-30 days old", "30-45 days old"]
    assert buckets[-1].start == EVAL_START - timedelta(days=45)
    assert len(notes) == 1 and "45 days" in notes[0] and "15 days" in notes[0]


def test_a_day_of_history_gives_one_bucket_and_a_note_instead_of_an_error(history):
    buckets, notes = plan_buckets(history.filter(pl.col("first_seen_date") == EVAL_START - timedelta(days=1)),
                                  EVAL_START)
    assert buckets == [AgeBucket("0-1 days old", EVAL_START - timedelta(days=1), EVAL_START - timedelta(days=1))]
    assert "shrunk to 1 days" in notes[0] and "only 1 age bucket" in notes[1]


def test_no_history_at_all_gives_no_buckets_and_says_why(newest):
    assert plan_buckets(newest, EVAL_START) == ([], [f"no labeled movies were first seen before {EVAL_START}; "
                                                      "there is no older data to compare"])


# -- the experiment ----------------------------------------------------------------------------------------

def test_every_bucket_trains_on_as_many_movies_as_the_smallest(table):
    assert table.schema == pl.Schema(RESULT_SCHEMA)
    assert table["status"].to_list() == [OK] * 3
    assert table["train_rows"].to_list() == [60, 60, 60]
    assert table["eval_rows"].to_list() == [100, 100, 100]
    assert table["age_days_mid"].to_list() == [15.0, 45.0, 75.0]
    assert (table["seconds"] > 0).all()


def test_newer_data_scores_higher_on_the_newest_movies(table):
    macro, micro = table["macro_f1"].to_list(), table["micro_f1"].to_list()
    # The oldest model knows none of the new words, so it can only guess the common genres.
    assert macro[0] > 0.9 and macro[0] > macro[2] + 0.3
    assert micro[0] > micro[2] + 0.2


def test_a_bucket_with_too_few_movies_is_reported_not_trained(history, newest):
    buckets, _ = plan_buckets(history, EVAL_START)
    oldest_ten = history.filter(pl.col("first_seen_date") < buckets[2].start + timedelta(days=10),
                                pl.col("movie_id").str.ends_with("-0"))
    thinned = pl.concat([history.filter(pl.col("first_seen_date") > buckets[2].end), oldest_ten])
    table = run_experiment(thinned, newest, buckets, CONFIG, min_rows=20)
    assert table["status"].to_list() == [OK, OK, INSUFFICIENT]
    # The smallest bucket that could train, not the insufficient one, sets the size; that one shows what it had.
    assert table["train_rows"].to_list() == [90, 90, 10]
    insufficient = table.row(2, named=True)
    assert [insufficient[c] for c in ("micro_f1", "macro_f1", "seconds")] == [None, None, None]


def test_nothing_to_score_trains_nothing(history, newest):
    buckets, _ = plan_buckets(history, EVAL_START)
    table = run_experiment(history, newest.clear(), buckets, CONFIG)
    assert table["status"].to_list() == [INSUFFICIENT] * 3 and table["eval_rows"].to_list() == [0, 0, 0]
    assert table["macro_f1"].null_count() == 3


def test_the_movies_scored_are_never_trained_on(newest):
    bucket = AgeBucket("0-30 days old", EVAL_START - timedelta(days=30), EVAL_START - timedelta(days=1))
    redated = newest.with_columns(pl.lit(EVAL_START - timedelta(days=5)).alias("first_seen_date"))
    table = run_experiment(redated, newest, [bucket], CONFIG)
    assert table.select("train_rows", "status").row(0) == (0, INSUFFICIENT)


def test_a_seed_fixes_the_sample_and_so_the_scores(history, newest, table):
    buckets, _ = plan_buckets(history, EVAL_START)
    again = run_experiment(history, newest, buckets, CONFIG, seed=0)
    assert again.drop("seconds").equals(table.drop("seconds"))


def test_the_plan_records_bucket_length_count_and_size(history, table):
    buckets, notes = plan_buckets(history, EVAL_START)
    assert describe_plan(buckets, table, EVAL_START, notes) == FreshnessPlan(30, 3, 60, EVAL_START, ())
    assert describe_plan([], table.clear(), EVAL_START, ["none"]) == FreshnessPlan(0, 0, 0, EVAL_START, ("none",))


# -- advice ------------------------------------------------------------------------------------------------

def test_advice_names_the_drop_and_how_often_to_retrain(table):
    drop = table["macro_f1"][0] - table["macro_f1"][1]
    assert drop >= MEANINGFUL_DROP
    advice = retrain_advice(table)
    assert f"{drop:.3f} macro F1 below" in advice
    assert "30-60 days old" in advice and "retraining at least every 30 days pays off" in advice


def test_a_loss_that_shows_only_in_older_data_sets_a_longer_interval():
    advice = retrain_advice(results((*NEWEST, 0.80), (*MIDDLE, 0.795), (*OLDEST, 0.70)))
    assert "0.100 macro F1 below" in advice and "every 60 days" in advice


def test_no_measurable_loss_says_retraining_more_often_does_not_pay():
    advice = retrain_advice(results((*NEWEST, 0.80), (*MIDDLE, 0.81), (*OLDEST, 0.795)))
    assert advice.startswith("No measurable loss from older data")
    assert "more often than every 60 days is unlikely to pay off" in advice


def test_too_few_scored_buckets_give_no_advice_on_how_often():
    advice = retrain_advice(results((*NEWEST, 0.80), (*MIDDLE, None), (*OLDEST, None)))
    assert advice.startswith("Not enough data") and "only 1 of 3 age buckets" in advice
    assert retrain_advice(results()).startswith("Not enough data")

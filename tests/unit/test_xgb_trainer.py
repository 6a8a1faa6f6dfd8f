"""The XGBoost genre model: it learns, it continues on new rows without losing its parent, it saves and loads."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from trending_assets.lib import features
from trending_assets.lib.features import FeatureSpec, featurize, label_matrix
from trending_assets.lib.genres import CANONICAL_GENRES
from trending_assets.lib.xgb_trainer import MIN_INTERCEPT, XGBConfig, XGBModel, train_stateful, train_stateless

# Each genre's movies mention two of its words among unrelated filler: a signal a small booster must find.
SIGNAL = {
    "action": ["explosion", "chase", "heist"],
    "comedy": ["laugh", "prank", "wacky"],
    "horror": ["ghost", "scream", "haunted"],
    "romance": ["love", "kiss", "wedding"],
    "western": ["cowboy", "saloon", "sheriff"],
}
COMMON = ("action", "comedy", "horror", "romance")
FILLER = [f"filler{i}" for i in range(300)]
# One thread: tiny boosters gain nothing from more, and OpenMP threads spin-wait when the test machine is busy.
CONFIG = XGBConfig(n_rounds=15, max_depth=3, eta=0.3, nthread=1, features=FeatureSpec(n_hash_features=2**10))
N_GENRES = len(CANONICAL_GENRES)


def movies(n: int, seed: int, genres: tuple[str, ...] = COMMON) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        size = min(int(rng.integers(1, 3)), len(genres))
        chosen = [str(g) for g in rng.choice(genres, size=size, replace=False)]
        words = [str(rng.choice(SIGNAL[g])) for g in chosen for _ in range(2)] + list(rng.choice(FILLER, 8))
        rng.shuffle(words)
        rows.append({
            "movie_id": f"s{seed}-{i}",
            "title": f"Movie {i}",
            "overview": " ".join(words),
            "genres": chosen,
            "release_year": None if i % 5 == 0 else int(rng.integers(1950, 2025)),
            "popularity": float(rng.exponential(10)),
            "vote_count": int(rng.integers(0, 5000)),
            "language": "en",
        })
    return pl.DataFrame(rows, schema_overrides={"genres": pl.List(pl.String)})


def micro_f1(model: XGBModel, frame: pl.DataFrame) -> float:
    truth = label_matrix(frame, model.genres).astype(bool)
    predicted = np.zeros_like(truth)
    for i, genres in enumerate(model.predict(frame)):
        predicted[i, [model.genres.index(g) for g in genres]] = True
    return 2 * (truth & predicted).sum() / (truth.sum() + predicted.sum())


@pytest.fixture(scope="module")
def parent() -> XGBModel:
    return train_stateless(movies(400, seed=1), CONFIG)


@pytest.fixture(scope="module")
def held_out() -> pl.DataFrame:
    return movies(200, seed=2)


# -- stateless ---------------------------------------------------------------------------------------------

def test_stateless_learns_genres_from_overview_words(parent, held_out):
    # Always guessing the two most common genres scores about 0.5 here.
    assert micro_f1(parent, held_out) > 0.9


def test_report_records_cost_rows_and_held_genres(parent):
    report = parent.report
    assert (report.mode, report.rows, report.skipped_unlabeled, report.start_round) == ("stateless", 400, 0, 0)
    assert report.rounds == CONFIG.n_rounds and report.trees_added == CONFIG.n_rounds * N_GENRES
    assert 0 < report.featurize_seconds < report.seconds and 0 < report.boost_seconds < report.seconds
    assert report.config_version == CONFIG.version
    assert set(report.genres_held) == set(CANONICAL_GENRES) - set(COMMON)


def test_a_genre_without_positives_is_held_at_its_floor_intercept(parent, held_out):
    probabilities = parent.predict_proba(held_out)
    assert probabilities.shape == (200, N_GENRES)
    np.testing.assert_allclose(probabilities[:, CANONICAL_GENRES.index("western")], MIN_INTERCEPT, rtol=1e-4)


def test_unlabeled_rows_are_skipped_and_an_unlabeled_window_is_refused():
    window = movies(60, seed=3).with_columns(
        pl.when(pl.int_range(pl.len()) < 10).then(pl.lit([], dtype=pl.List(pl.String))).otherwise("genres")
        .alias("genres")
    )
    assert train_stateless(window, replace(CONFIG, n_rounds=2)).report.skipped_unlabeled == 10
    with pytest.raises(ValueError, match="nothing to train on"):
        train_stateless(window.head(10), CONFIG)


def test_a_seed_fixes_the_model(held_out):
    window = movies(150, seed=4)
    first, second = (train_stateless(window, CONFIG).predict_proba(held_out) for _ in range(2))
    assert np.array_equal(first, second)


def test_every_movie_gets_at_least_its_most_likely_genre(parent, held_out):
    probabilities = parent.predict_proba(held_out.head(5))
    predicted = parent.predict(held_out.head(5), threshold=1.01)
    assert predicted == [[CANONICAL_GENRES[int(np.argmax(row))]] for row in probabilities]


def test_no_movies_no_predictions(parent, held_out):
    assert parent.predict_proba(held_out.clear()).shape == (0, N_GENRES)
    assert parent.predict(held_out.clear()) == []


def test_config_version_follows_the_recipe_not_the_thread_count():
    assert replace(CONFIG, nthread=8).version == CONFIG.version
    assert replace(CONFIG, eta=0.1).version != CONFIG.version
    assert replace(CONFIG, features=FeatureSpec(n_hash_features=2**11)).version != CONFIG.version


# -- stateful ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def child(parent) -> XGBModel:
    return train_stateful(parent, movies(150, seed=5), CONFIG, extra_rounds=5)


def test_stateful_adds_exactly_the_extra_rounds_per_genre(parent, child):
    assert parent.n_rounds == CONFIG.n_rounds  # the parent is untouched
    assert child.n_rounds == parent.n_rounds + 5
    assert child.n_trees == parent.n_trees + 5 * N_GENRES == len(child.booster.get_dump())
    assert child.report.mode == "stateful" and child.report.start_round == parent.n_rounds
    assert child.report.rows == 150 and child.report.trees_added == 5 * N_GENRES
    assert child.history == parent.history + (child.report,)


def test_stateful_keeps_the_parents_trees_and_changes_the_predictions(parent, child, held_out):
    matrix = xgb.DMatrix(featurize(held_out, child.features))
    parents_part = child.booster.predict(matrix, iteration_range=(0, parent.n_rounds)).reshape(200, N_GENRES)
    assert np.array_equal(parents_part, parent.predict_proba(held_out))
    assert not np.array_equal(child.predict_proba(held_out), parent.predict_proba(held_out))


def test_stateful_learns_a_genre_the_parent_never_saw(parent):
    with_westerns = movies(300, seed=6, genres=COMMON + ("western",))
    child = train_stateful(parent, with_westerns, CONFIG, extra_rounds=10)
    westerns = movies(100, seed=7, genres=("western",))
    western = CANONICAL_GENRES.index("western")
    assert parent.predict_proba(westerns)[:, western].mean() < 0.05
    assert child.predict_proba(westerns)[:, western].mean() > 0.5


def test_a_batch_without_a_genre_leaves_what_the_parent_knew_of_it(parent, held_out):
    batch = movies(100, seed=10, genres=("action", "comedy"))
    child = train_stateful(parent, batch, CONFIG, extra_rounds=10)
    assert "horror" in child.report.genres_held and "action" not in child.report.genres_held
    horror = CANONICAL_GENRES.index("horror")
    np.testing.assert_allclose(child.predict_proba(held_out)[:, horror], parent.predict_proba(held_out)[:, horror],
                               atol=1e-5)


def test_stateful_refuses_a_parent_with_another_feature_spec(parent):
    other = replace(CONFIG, features=FeatureSpec(n_hash_features=2**11))
    with pytest.raises(ValueError, match=f"{parent.features.version}.*{other.features.version}"):
        train_stateful(parent, movies(20, seed=8), other, extra_rounds=1)


def test_stateful_refuses_a_changed_genre_list(parent):
    with pytest.raises(ValueError, match="genre list"):
        train_stateful(parent, movies(20, seed=8), CONFIG, extra_rounds=1, genres=COMMON)


# -- save and load -----------------------------------------------------------------------------------------

def test_save_and_load_give_the_same_probabilities(child, held_out, tmp_path):
    paths = child.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["booster.ubj", "model.json"]
    loaded = XGBModel.load(tmp_path / "model")
    assert np.array_equal(loaded.predict_proba(held_out), child.predict_proba(held_out))
    assert (loaded.config, loaded.genres, loaded.history) == (child.config, child.genres, child.history)
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["n_trees"] == child.n_trees
    assert [step["mode"] for step in manifest["history"]] == ["stateless", "stateful"]


def test_a_loaded_model_can_be_continued(child, tmp_path):
    child.save(tmp_path)
    grandchild = train_stateful(XGBModel.load(tmp_path), movies(50, seed=9), CONFIG, extra_rounds=2)
    assert grandchild.n_rounds == child.n_rounds + 2


def test_load_refuses_a_model_whose_featurizer_changed(parent, tmp_path, monkeypatch):
    parent.save(tmp_path)
    monkeypatch.setattr(features, "FEATURES_REVISION", features.FEATURES_REVISION + 1)
    with pytest.raises(ValueError, match="featurizer changed"):
        XGBModel.load(tmp_path)

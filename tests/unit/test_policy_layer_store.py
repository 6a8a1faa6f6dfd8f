"""The served policy layer end to end without Dagster: the router's draws (``serving_policy``), logged as the
router logs them into a real DuckDB, learned back by ``policy_layer_store`` against the movies' labels.

Comedy's probabilities are well separated at 0.5. Documentary's model is under-confident: true documentaries score
0.25-0.45 and the rest 0-0.3, so 0.3 is the best threshold (accuracy 0.9 against 0.6 at the model's 0.5).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pytest

from trending_assets.lib import policy_layer_learning as learning
from trending_assets.lib import policy_layer_store as store
from trending_assets.lib.serving_policy import PublishedLayer, ThresholdLayer

GENRES = ["comedy", "documentary"]
START = datetime(2026, 1, 1)


class Warehouse:
    """A DuckDB connection with the two marts the layer reads, and each movie's model probabilities."""

    def __init__(self, con: duckdb.DuckDBPyConnection, movies: dict[str, np.ndarray]):
        self.con, self.movies = con, movies

    def __getattr__(self, name):
        return getattr(self.con, name)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_feedback_events (event_type VARCHAR, user_id VARCHAR, movie_id VARCHAR, "
                "experiment_id VARCHAR, model_version VARCHAR, payload VARCHAR, occurred_at TIMESTAMP)")
    con.execute("CREATE TABLE marts.dim_movies (movie_id VARCHAR, genres VARCHAR[])")
    rng = np.random.default_rng(3)
    movies = {}
    for i in range(60):
        comedy, documentary = rng.random() < 0.4, rng.random() < 0.4
        probs = [rng.uniform(0.5, 0.95) if comedy else rng.uniform(0.05, 0.5),
                 rng.uniform(0.25, 0.45) if documentary else rng.uniform(0.0, 0.3)]
        movies[f"m{i}"] = np.array(probs)
        con.execute("INSERT INTO marts.dim_movies VALUES (?, ?)",
                    # every movie has a label ("drama", outside the layer): an empty list means unlabelled
                    [f"m{i}", ["drama"] + [g for g, member in zip(GENRES, (comedy, documentary)) if member]])
    yield Warehouse(con, movies)
    con.close()


def serve_day(con, layer: store.Layer, published: dict, day: int, users: int = 150, model: str = "xgb-a") -> None:
    """One day of /trending for champion-served users, logged as the router logs it."""
    served, rng = ThresholdLayer(published), np.random.default_rng(day)
    movie_ids = list(con.movies)
    rows = []
    for u in range(users):
        user, at = f"u{u}", START + timedelta(days=day, seconds=u)
        choice = served.choose(user, f"day-{day}", tuple(GENRES))
        request = f"r{day}-{u}"
        rows.append(("exposure", user, None, layer.layer_id, model, json.dumps({"request_id": request,
                                                                                 **choice.payload()}), at))
        for movie in rng.choice(movie_ids, size=10, replace=False):
            shown = [g for g, on in zip(GENRES, choice.labels(con.movies[movie][None, :])[0]) if on]
            rows.append(("impression", user, movie, None, model,
                         json.dumps({"request_id": request, "genres": shown}), at))
    con.executemany("INSERT INTO marts.fct_feedback_events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def exact_accuracy(con, genre: str, threshold: float) -> float:
    truth = dict(con.execute("SELECT movie_id, genres FROM marts.dim_movies").fetchall())
    column = GENRES.index(genre)
    return float(np.mean([(p[column] >= threshold) == (genre in truth[m]) for m, p in con.movies.items()]))


def learn(con, layer: store.Layer) -> dict:
    result = learning.analyse(layer, learning.decisions(con, layer), store.previous_thresholds(con, layer),
                           n_resamples=200)
    store.save(con, layer, result)
    return result


def test_the_served_layer_learns_the_under_confident_genres_threshold_and_proves_it_off_policy(con):
    layer = store.start(con, "xgb-a", GENRES, 0.5, START, warmup=20)
    published = store.published(layer)
    assert published["genres"]["documentary"] == pytest.approx([1 / 6] * 6)  # uniform before any evidence
    for day in range(1, 5):
        serve_day(con, layer, published, day)
        result = learn(con, layer)
        published = store.published(layer, result["state"])
    by_genre = {r["genre"]: r for r in result["rows"]}
    assert by_genre["comedy"]["threshold"] == 0.5 and by_genre["documentary"]["threshold"] == 0.3
    documentary = by_genre["documentary"]
    assert documentary["gate_passed"] and documentary["learned_low"] > documentary["model_dr"]
    # each user sees movies drawn evenly, so a threshold's true value is its accuracy over the catalog
    assert documentary["learned_dr"] == pytest.approx(exact_accuracy(con, "documentary", 0.3), abs=0.02)
    assert documentary["model_dr"] == pytest.approx(exact_accuracy(con, "documentary", 0.5), abs=0.04)
    assert published["genres"]["documentary"][1] > 0.8  # most users now draw 0.3
    assert "documentary 0.30" in result["line"] and "comedy" not in result["line"].split("moved")[1]
    lines = store.history_lines(con, store.get(con), moved_only=True)
    assert len(lines) == 1 and lines[0].startswith("documentary: threshold 0.30") and "OPE gate passed" in lines[0]


def test_decisions_reward_the_share_of_movies_where_show_or_hide_matched_the_label(con):
    layer = store.start(con, "xgb-a", GENRES, 0.5, START)
    serve_day(con, layer, store.published(layer), 1, users=40)
    logged = learning.decisions(con, layer)
    assert logged.height == 80 and set(logged["genre"]) == set(GENRES)
    truth = {m: set(g) for m, g in con.execute("SELECT movie_id, genres FROM marts.dim_movies").fetchall()}
    impressions = con.execute("SELECT user_id, movie_id, payload FROM marts.fct_feedback_events WHERE "
                              "event_type = 'impression'").fetchall()
    for user, genre, threshold, propensity, reward in logged.head(10).iter_rows():
        mine = [(m, set(json.loads(p)["genres"])) for u, m, p in impressions if u == user]
        expected = np.mean([(genre in shown) == (genre in truth[m]) for m, shown in mine])
        assert reward == pytest.approx(expected) and propensity == pytest.approx(1 / 6)
        assert all((genre in shown) == (con.movies[m][GENRES.index(genre)] >= threshold) for m, shown in mine)


def test_reset_forgets_what_was_learned_and_rebase_ignores_the_old_models_logs(con):
    layer = store.start(con, "xgb-a", GENRES, 0.5, START, warmup=20)
    published = store.published(layer)
    for day in (1, 2, 3):
        serve_day(con, layer, published, day)
        published = store.published(layer, learn(con, layer)["state"])
    assert published["genres"]["documentary"][1] > 0.5
    layer = store.reset(con, START + timedelta(days=4), "a test reset")
    assert learning.decisions(con, layer).is_empty() and store.previous_thresholds(con, layer) == {}
    fresh = learn(con, layer)
    assert store.published(layer, fresh["state"])["genres"]["documentary"] == pytest.approx([1 / 6] * 6)
    serve_day(con, layer, store.published(layer), 5)  # logged for xgb-a; the champion then changes
    layer = store.rebase(con, "xgb-b", GENRES, 0.5, START + timedelta(days=4))
    assert learning.decisions(con, layer).is_empty()
    events = [line.split(": ", 1)[0].split()[-1] for line in store.history_lines(con, layer)]
    assert events == ["started", "reset", "rebased"]
    with pytest.raises(ValueError, match="already running"):
        store.start(con, "xgb-b", GENRES, 0.5, START)
    store.stop(con, "done")
    assert store.published(store.get(con))["active"] is False
    with pytest.raises(ValueError, match="not running"):
        store.reset(con, START, "again")


def test_draws_stick_per_user_and_day_and_follow_the_published_distribution():
    published = {"layer_id": "genre-thresholds", "model_version": "xgb-a", "salt": "s", "active": True,
                 "thresholds": [0.3, 0.5], "genres": {"comedy": [0.2, 0.8], "documentary": [0.5, 0.5]}}
    layer = ThresholdLayer(published)
    choices = [layer.choose(f"u{i}", "day-1", ("comedy", "documentary")) for i in range(4000)]
    assert np.mean([c.thresholds[0] == 0.3 for c in choices]) == pytest.approx(0.2, abs=0.02)
    assert all(c.propensities[0] == (0.2 if c.thresholds[0] == 0.3 else 0.8) for c in choices)
    assert all(np.array_equal(layer.choose(f"u{i}", "day-1", ("comedy", "documentary")).thresholds,
                              choices[i].thresholds) for i in range(50))
    assert layer.serves("xgb-a", ("documentary", "comedy")) is None
    assert "xgb-b" in layer.serves("xgb-b", ("comedy", "documentary"))
    assert "not the model's" in layer.serves("xgb-a", ("comedy", "drama"))


def test_a_corrupt_layer_file_keeps_the_last_good_layer(tmp_path):
    path = tmp_path / "genre_thresholds.json"
    good = {"layer_id": "l", "model_version": "xgb-a", "salt": "s", "active": True, "thresholds": [0.3, 0.5],
            "genres": {"comedy": [0.0, 1.0]}}
    path.write_text(json.dumps(good))
    watched = PublishedLayer(path)
    assert watched.refresh() and watched.error is None
    path.write_text("{not json")
    assert watched.refresh() and "not used" in watched.error and watched.current.model_version == "xgb-a"
    assert watched.choice_for("xgb-a", ("comedy",), "u1", "d").thresholds.tolist() == [0.5]

"""What the /trending router logs for a ranking experiment: a bandit's exposure carries the propensity of the
user's arm and the whole weights vector it was drawn from (what the allocation audit compares the arms with)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from trending_assets.lib import deployment_plan as dp
from trending_assets.lib import serving_ranking
from trending_assets.lib.serving import Scored

MODELS = {"v1": dp.ModelRef("v1", "genre_xgb", "/models/v1", "0" * 64)}
GENRES = ("Comedy", "Drama")


@dataclass(frozen=True)
class Catalog:
    """The two things ``rank`` reads of the serving catalog: its movies by popularity, and each movie's row."""

    frame: pl.DataFrame
    rows: dict[str, int]


def catalog(movies: int = 12) -> tuple[Catalog, Scored]:
    """Movies m00.. by falling popularity, every third a drama from m00 on (the rest comedies), and the model's
    genres."""
    ids = [f"m{i:02d}" for i in range(movies)]
    frame = pl.DataFrame({"movie_id": ids, "popularity": [float(movies - i) for i in range(movies)]})
    labels = np.array([[i % 3 != 0, i % 3 == 0] for i in range(movies)])
    return Catalog(frame, {movie: row for row, movie in enumerate(ids)}), Scored(GENRES, labels, labels * 0.9)


def plan(design: str, weights: tuple[float, float]) -> dp.DeploymentPlan:
    experiment = dp.Experiment("ranker-bandit", "ranking", "salt-bandit", 100.0, (
        dp.Variant("popularity", weights[0], ranker="popularity"),
        dp.Variant("genre_taste", weights[1], ranker="genre_taste")), design=design)
    return dp.build("v1", MODELS, experiments=(experiment,))


def test_a_bandit_exposure_logs_the_arms_propensity_and_the_whole_weights_vector():
    movies, scored = catalog()
    served = plan("bandit", (0.3, 0.7))
    arms = Counter()
    for i in range(300):
        ranked = serving_ranking.rank(served, f"user-{i}", 5, movies, scored, {"Comedy": 1.0}, "v1", f"r{i}")
        arm = ranked.exposure.variant
        arms[arm] += 1
        assert ranked.payload == {"surface": "ranking", "design": "bandit", "ranker": arm,
                                  "propensity": {"popularity": 0.3, "genre_taste": 0.7}[arm],
                                  "weights": {"popularity": 0.3, "genre_taste": 0.7}}
        first = movies.frame["movie_id"][ranked.rows[0]]
        # the arm's ranker ordered the list: the most popular movie is a drama, the comedy fan's taste puts m01 first
        assert first == ("m00" if arm == "popularity" else "m01")
    assert set(arms) == {"popularity", "genre_taste"} and arms["genre_taste"] > arms["popularity"]


def test_an_ab_exposure_logs_only_the_propensity():
    movies, scored = catalog()
    ranked = serving_ranking.rank(plan("ab", (0.5, 0.5)), "user-1", 5, movies, scored, {}, "v1", "r1")
    assert ranked.payload["propensity"] == 0.5 and "weights" not in ranked.payload


def test_users_outside_ranking_experiments_get_the_plans_production_ranker():
    movies, scored = catalog()
    popular = serving_ranking.rank(dp.build("v1", MODELS), "user-1", 5, movies, scored, {"Comedy": 1.0}, "v1")
    assert popular.rows == [0, 1, 2, 3, 4] and popular.exposure is None
    promoted = dp.build("v1", MODELS, ranker="genre_taste")
    ranked = serving_ranking.rank(promoted, "user-1", 5, movies, scored, {"Comedy": 1.0}, "v1")
    # the comedy fan's list now leads with the most popular comedy; nothing is logged as an experiment
    assert movies.frame["movie_id"][ranked.rows[0]] == "m01" and ranked.exposure is None
    assert serving_ranking.rank(promoted, "user-2", 5, movies, scored, {}, "v1").rows == [0, 1, 2, 3, 4]


def test_a_balanced_interleaving_logs_each_positions_rank_in_both_rankings():
    movies, scored = catalog()
    experiment = dp.Experiment("ranker-test", "ranking", "salt-test", 100.0, (
        dp.Variant("A", 0.5, ranker="popularity"), dp.Variant("B", 0.5, ranker="genre_taste")), design="balanced")
    served = dp.build("v1", MODELS, experiments=(experiment,))
    ranked = serving_ranking.rank(served, "user-1", 6, movies, scored, {"Comedy": 1.0}, "v1", "r1")
    ids = [movies.frame["movie_id"][r] for r in ranked.rows]
    by_popularity = movies.frame["movie_id"].to_list()
    payloads = ranked.position_payloads()
    assert len(payloads) == 6 and len(set(ids)) == 6
    for movie, payload in zip(ids, payloads):
        assert payload["rank_a"] == by_popularity.index(movie) + 1 and payload["team"] in ("A", "B")
    # the comedy fan's taste ranks the most popular comedy first in B
    assert payloads[ids.index("m01")]["rank_b"] == 1

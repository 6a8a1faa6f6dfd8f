"""Interleaving: valid merged lists, click credit, per-user verdicts, A/A honesty and power, in a cascade world."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pytest

from trending_assets.lib.interleaving import (
    Interleaved,
    Outcome,
    balanced,
    credit,
    effect_from_pilot,
    interleave_for,
    required_users,
    seed_for,
    team_draft,
    verdict,
    verdict_from_counts,
)
from trending_assets.lib.rankers import RANKERS, Candidate, genre_taste, popularity, profile_from_clicks
from trending_assets.lib.simulator import cascade
from trending_assets.lib.simulator.scenarios import UNIVERSE

LENGTH = 20
ALPHA = 0.05


@dataclass(frozen=True)
class Synthetic:
    """A small catalogue (random genres from UNIVERSE, popularity unrelated to taste) and users' Dirichlet tastes."""

    candidates: list[Candidate]
    genres_of: dict[str, tuple[str, ...]]
    tastes: np.ndarray

    def profile(self, user: int) -> dict[str, float]:
        return dict(zip(UNIVERSE, self.tastes[user].tolist()))


@pytest.fixture(scope="module")
def world() -> Synthetic:
    rng = np.random.default_rng(7)
    candidates = [Candidate(f"m{j:03d}", float(rng.lognormal()), tuple(rng.choice(UNIVERSE, rng.integers(1, 4),
                                                                                  replace=False)))
                  for j in range(300)]
    tastes = rng.dirichlet(np.full(len(UNIVERSE), 0.4), size=400)
    return Synthetic(candidates, {c.movie_id: c.genres for c in candidates}, tastes)


def random_pair(rng: np.random.Generator, same_items: bool) -> tuple[list[str], list[str]]:
    """Two rankings: permutations of one set (as two rankers over the same candidates), or overlapping lists of
    different lengths."""
    pool = [f"m{j}" for j in range(int(rng.integers(1, 40)))]
    if same_items:
        return [str(m) for m in rng.permutation(pool)], [str(m) for m in rng.permutation(pool)]
    return ([str(m) for m in rng.choice(pool, int(rng.integers(0, len(pool) + 1)), replace=False)],
            [str(m) for m in rng.choice(pool, int(rng.integers(0, len(pool) + 1)), replace=False)])


# Rankers


def test_popularity_orders_by_popularity_then_movie_id():
    movies = [Candidate("b", 5.0, ("drama",)), Candidate("a", 5.0, ("comedy",)), Candidate("c", 9.0, ())]
    assert popularity(movies) == ["c", "a", "b"]
    assert RANKERS["popularity"](movies, {"comedy": 1.0}) == ["c", "a", "b"]  # the profile is ignored


def test_genre_taste_blends_taste_into_popularity(world: Synthetic):
    by_popularity = popularity(world.candidates)
    assert genre_taste(world.candidates, {}) == by_popularity
    assert genre_taste(world.candidates, {"drama": 1.0}, taste_weight=0.0) == by_popularity
    only_drama = genre_taste(world.candidates, {"drama": 1.0}, taste_weight=1.0)
    pure_drama = {c.movie_id for c in world.candidates if c.genres == ("drama",)}
    assert pure_drama and only_drama[:len(pure_drama)] == [m for m in by_popularity if m in pure_drama]
    dramas = {c.movie_id for c in world.candidates if "drama" in c.genres}
    blended = genre_taste(world.candidates, {"drama": 1.0}, taste_weight=0.5)
    assert len(dramas.intersection(blended[:LENGTH])) > len(dramas.intersection(by_popularity[:LENGTH]))
    assert sorted(RANKERS["genre_taste"](world.candidates, {"drama": 1.0})) == sorted(by_popularity)
    with pytest.raises(ValueError, match="taste_weight"):
        genre_taste(world.candidates, {"drama": 1.0}, taste_weight=1.5)


def test_profile_from_clicks_shares_each_click_among_its_genres():
    assert profile_from_clicks([("drama",), ("drama", "comedy")]) == {"comedy": 0.25, "drama": 0.75}
    assert profile_from_clicks([]) == {} and profile_from_clicks([()]) == {}


# Construction


@pytest.mark.parametrize("same_items", [True, False])
@pytest.mark.parametrize("method", [team_draft, balanced])
def test_every_merge_is_a_valid_list(method, same_items):
    rng = np.random.default_rng(1)
    for _ in range(300):
        a, b = random_pair(rng, same_items)
        length = int(rng.integers(0, 45))
        merged = method(a, b, length, rng)
        assert len(set(merged.items)) == len(merged.items) == min(length, len(set(a) | set(b)))
        assert set(merged.items) <= set(a) | set(b)
        assert len(merged.teams) == len(merged.items) and set(merged.teams) <= {"A", "B"}


@pytest.mark.parametrize("same_items", [True, False])
def test_team_draft_teams_take_turns_and_pick_in_their_rankers_order(same_items):
    rng = np.random.default_rng(2)
    for _ in range(300):
        a, b = random_pair(rng, same_items)
        merged = team_draft(a, b, LENGTH, rng)
        for team, ranking in (("A", a), ("B", b)):
            picked = [m for m, t in zip(merged.items, merged.teams) if t == team]
            assert picked == sorted(picked, key=ranking.index)
        for k in range(1, len(merged.items) + 1):
            placed = set(merged.items[:k - 1])
            # The teams alternate while both rankers still have unplaced movies; past that, one fills the list.
            if set(a) - placed and set(b) - placed:
                assert abs(merged.teams[:k].count("A") - merged.teams[:k].count("B")) <= 1
            # Each pick is its ranker's best movie not yet listed.
            ranking = a if merged.teams[k - 1] == "A" else b
            assert merged.items[k - 1] == next(m for m in ranking if m not in placed)


def test_balanced_prefixes_are_tops_of_both_rankings():
    rng = np.random.default_rng(3)
    for _ in range(300):
        a, b = random_pair(rng, same_items=True)
        merged = balanced(a, b, LENGTH, rng)
        for k in range(len(merged.items) + 1):
            # Every prefix is the union of A's top ka and B's top kb with |ka - kb| <= 1.
            prefix = set(merged.items[:k])
            tops = [(ka, kb) for ka in range(len(a) + 1) for kb in (ka - 1, ka, ka + 1) if 0 <= kb <= len(b)
                    and set(a[:ka]) <= prefix and set(b[:kb]) <= prefix]
            assert any(prefix == set(a[:ka]) | set(b[:kb]) for ka, kb in tops)


def test_merging_a_ranking_with_itself_keeps_it():
    ranking = [f"m{j}" for j in range(30)]
    rng = np.random.default_rng(4)
    assert team_draft(ranking, ranking, LENGTH, rng).items == ranking[:LENGTH]
    assert balanced(ranking, ranking, LENGTH, rng).items == ranking[:LENGTH]
    with pytest.raises(ValueError, match="negative"):
        team_draft(ranking, ranking, -1, rng)


def test_serving_seed_is_sha256_and_reproducible():
    expected = int.from_bytes(hashlib.sha256(b"exp1:u1:2026-01-05").digest()[:8], "big")
    assert seed_for("exp1", "u1", "2026-01-05") == expected
    a, b = [f"a{j}" for j in range(20)], [f"b{j}" for j in range(20)]
    first = interleave_for(a, b, LENGTH, "exp1", "u1", "r1")
    assert interleave_for(a, b, LENGTH, "exp1", "u1", "r1") == first
    assert len({tuple(interleave_for(a, b, LENGTH, "exp1", "u1", f"r{j}").teams) for j in range(20)}) > 1
    with pytest.raises(ValueError, match="unknown interleaving method"):
        interleave_for(a, b, LENGTH, "exp1", "u1", "r1", method="probabilistic")


# Credit


def test_team_draft_credit_counts_clicks_on_each_team():
    merged = Interleaved(["x", "y", "z", "w"], ["A", "B", "B", "A"], "team_draft", ("x", "w"), ("y", "z"))
    assert credit(merged, [1, 2]) == Outcome(0, 2) and credit(merged, [1, 2]).winner == "B"
    assert credit(merged, ["x", "z", "w"]) == Outcome(2, 1)
    assert credit(merged, [0, 1]).winner is None and credit(merged, []).winner is None
    with pytest.raises(ValueError, match="outside the list"):
        credit(merged, [4])


def test_balanced_credit_uses_the_deepest_click_and_top_k_of_each_ranking():
    # A = (a, b, c, d), B = (b, d, c, a); with A first the merge is a, b, d, c.
    a, b = ["a", "b", "c", "d"], ["b", "d", "c", "a"]
    merged = next(m for m in (balanced(a, b, 4, np.random.default_rng(s)) for s in range(20)) if m.items[0] == "a")
    assert merged.items == ["a", "b", "d", "c"]
    assert credit(merged, ["d"]) == Outcome(0, 1)  # k = min(4, 2) = 2: d is in B's top 2 only
    assert credit(merged, ["a", "c"]) == Outcome(2, 1)  # k = 3: A's top 3 holds a and c, B's only c
    assert credit(merged, ["b"]) == Outcome(0, 1)  # k = 1: b is B's first but A's second
    assert credit(merged, ["a"]) == Outcome(1, 0)
    assert credit(merged, ["a", "b", "c", "d"]) == Outcome(3, 3)  # k = 3: c is third in both


# Verdicts


def test_verdict_takes_each_users_side_over_all_their_impressions():
    impressions = [("u1", Outcome(1, 0)), ("u1", Outcome(0, 2)),  # B overall
                   ("u2", Outcome(1, 0)), ("u3", Outcome(1, 1)), ("u4", Outcome(0, 0))]
    result = verdict(impressions, "genre_taste", "popularity")
    assert (result.users, result.wins_a, result.wins_b, result.ties) == (4, 1, 1, 1)
    assert result.preference == 0.5 and result.winner is None and result.delta_ab == 0.0
    assert result.line().startswith("no significant preference between genre_taste and popularity")


def test_verdict_line_names_the_winner_with_its_share():
    result = verdict_from_counts(301, 412, 50, 900, "popularity", "genre_taste")
    assert result.winner == "B" and result.p_value < 1e-3 and result.ci_low < result.preference < result.ci_high
    assert result.line() == ("genre_taste beats popularity: 412 vs 301 users prefer it (58% of 713 with a preference, "
                             "95% CI [54%, 61%]), p=3.7e-05")


def simulate(world: Synthetic, users: np.ndarray, a_ranker, b_ranker, method, rng) -> list[tuple[str, Outcome]]:
    """One impression per user through the serving path: rank, interleave, click by the cascade model, credit."""
    impressions = []
    for user in users:
        profile = world.profile(int(user))
        a, b = a_ranker(world.candidates, profile), b_ranker(world.candidates, profile)
        merged = method(a, b, LENGTH, rng)
        clicked = cascade.clicks(merged.items, world.tastes[user], world.genres_of, rng)
        impressions.append((f"u{user}", credit(merged, clicked)))
    return impressions


@pytest.mark.parametrize("method", [team_draft, balanced])
def test_a_clearly_better_ranker_wins_in_either_seat(world: Synthetic, method):
    rng = np.random.default_rng(5)
    users = np.arange(len(world.tastes))
    better = simulate(world, users, RANKERS["genre_taste"], RANKERS["popularity"], method, rng)
    assert verdict(better, "genre_taste", "popularity").winner == "A"
    swapped = simulate(world, users, RANKERS["popularity"], RANKERS["genre_taste"], method, rng)
    assert verdict(swapped, "popularity", "genre_taste").winner == "B"


def test_a_ranker_against_itself_is_rarely_called_better(world: Synthetic):
    rng = np.random.default_rng(6)
    lists = [genre_taste(world.candidates, world.profile(u))[:LENGTH] for u in range(len(world.tastes))]
    attraction = np.array([cascade.attractiveness(lists[u], world.tastes[u], world.genres_of)
                           for u in range(len(world.tastes))])
    experiments, users = 300, 150
    significant = 0
    for _ in range(experiments):
        who = rng.integers(len(world.tastes), size=users)
        clicked = cascade.click_matrix(attraction[who], rng)
        significant += verdict(
            (f"u{i}", credit(team_draft(lists[u], lists[u], LENGTH, rng), np.flatnonzero(clicked[i]).tolist()))
            for i, u in enumerate(who)).winner is not None
    standard_error = math.sqrt(ALPHA * (1 - ALPHA) / experiments)
    assert ALPHA - 3 * standard_error <= significant / experiments <= ALPHA + 3 * standard_error


# Power


def test_required_users_falls_with_the_effect_and_rises_with_ties_and_power():
    sizes = [required_users(p, 0.5) for p in (0.52, 0.55, 0.6, 0.7, 0.8)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    assert required_users(0.4, 0.5) == required_users(0.6, 0.5)
    assert required_users(0.6, 0.8) > required_users(0.6, 0.5) > required_users(0.6, 0.0)
    assert required_users(0.6, 0.5, power=0.9) > required_users(0.6, 0.5)
    assert required_users(0.6, 0.5, alpha=0.01) > required_users(0.6, 0.5)
    with pytest.raises(ValueError, match="p_win"):
        required_users(0.5, 0.5)


def test_required_users_gives_about_the_planned_power_in_simulation(world: Synthetic):
    rng = np.random.default_rng(8)
    by_popularity = popularity(world.candidates)
    merged, teams = [], []
    for user in range(len(world.tastes)):
        a = genre_taste(world.candidates, world.profile(user), taste_weight=0.015)
        for _ in range(4):
            mix = team_draft(a, by_popularity, LENGTH, rng)
            merged.append(cascade.attractiveness(mix.items, world.tastes[user], world.genres_of))
            teams.append([1 if t == "A" else -1 for t in mix.teams])
    merged, teams = np.array(merged), np.array(teams)

    def counts(users: int) -> tuple[int, int, int]:
        rows = rng.integers(len(merged), size=users)
        clicked = cascade.click_matrix(merged[rows], rng)
        margin = (clicked * teams[rows]).sum(axis=1)
        return int(np.sum(margin > 0)), int(np.sum(margin < 0)), int(np.sum(clicked.any(axis=1) & (margin == 0)))

    pilot = verdict_from_counts(*counts(40_000), 40_000)
    planned = required_users(*effect_from_pilot(pilot))
    assert 200 <= planned <= 2000  # a test of the formula, not of a trivially large or small effect
    experiments = 200
    power = np.mean([verdict_from_counts(*counts(planned), planned).winner == "A" for _ in range(experiments)])
    assert abs(power - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / experiments)


# Cascade model


def test_cascade_expected_clicks_match_sampled_clicks(world: Synthetic):
    rng = np.random.default_rng(9)
    movies = popularity(world.candidates)[:LENGTH]
    taste = world.tastes[0]
    attraction = cascade.attractiveness(movies, taste, world.genres_of)
    assert np.allclose(cascade.attraction_table(taste, [world.genres_of[m] for m in movies])[0], attraction)
    sampled = cascade.click_matrix(np.tile(attraction, (40_000, 1)), rng).sum(axis=1)
    expected = cascade.expected_clicks(movies, taste, world.genres_of)
    assert abs(sampled.mean() - expected) <= 4 * sampled.std() / math.sqrt(sampled.size)
    assert np.allclose(cascade.reach(np.zeros(5)), 1 / (1 + np.arange(5)) ** cascade.ETA)
    clicked = cascade.clicks(movies, taste, world.genres_of, rng)
    assert clicked == sorted(clicked) and all(0 <= k < LENGTH for k in clicked)


def test_a_ranking_test_is_decided_on_the_always_valid_p_value_once_enough_users_prefer_a_ranker():
    from datetime import datetime

    import polars as pl

    from trending_assets.lib import ranking_tests

    test = ranking_tests.RankingTest("t", "team_draft", "t-salt", "popularity", "genre_taste", 100.0, 100,
                                     "running", datetime(2026, 1, 1))
    # 60 users prefer B, 40 prefer A, 50 never clicked: the one-look sign test says p=0.057, and nothing is decided
    credits = pl.DataFrame({"user_id": [f"u{i}" for i in range(150)],
                            "credit_a": [1] * 40 + [0] * 60 + [0] * 50, "credit_b": [0] * 40 + [2] * 60 + [0] * 50})
    small = ranking_tests.analyse(test, credits)
    assert not small["decided"] and small["winner"] is None and small["sequential_p"] > small["verdict"].p_value
    big = ranking_tests.analyse(test, pl.concat([credits] * 12))  # the same shares on 1200 users with a preference
    assert big["decided"] and big["winner"] == "genre_taste" and big["sequential_p"] < 0.05
    assert "genre_taste beats popularity" in big["line"] and "always-valid p=" in big["line"]
    # a later look never raises the always-valid p-value above an earlier one
    assert ranking_tests.analyse(test, credits, previous_sequential_p=0.01)["sequential_p"] == 0.01

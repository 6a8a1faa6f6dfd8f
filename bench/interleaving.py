"""Users needed to find the same ranker improvement: team-draft interleaving vs a 50/50 A/B test.

    .venv/bin/python bench/interleaving.py                 # 200 simulated experiments per user count
    .venv/bin/python bench/interleaving.py --quick         # smaller pool, 100 experiments per user count
    .venv/bin/python bench/interleaving.py --taste-weight 0.2 --seed 1

The world: a catalogue of ``--movies`` candidates (1-3 genres drawn uniformly from ``UNIVERSE``, log-normal
popularity that says nothing about taste) and a pool of ``--pool`` users with Dirichlet tastes (as the simulator's
audience). Each user's genre profile comes from ``--history`` past clicks, drawn in proportion to the movies'
attractiveness to them, so personalisation helps but is noisy. Ranker A is ``genre_taste`` (blend
``--taste-weight``), ranker B is ``popularity``; both list ``--length`` movies and users click by the cascade model
(``trending_assets.lib.simulator.cascade``), which gives the true gap exactly: expected clicks per impression of
each ranker over the pool.

Every simulated experiment draws its users from the pool with replacement (each sees ``--sessions`` impressions):

* interleaving: every user sees a team-draft merge of A and B (one of ``--draws`` merges pre-drawn per pool user);
  each user prefers the ranker credited with more clicks, and the sign test (``interleaving.verdict_from_counts``)
  must find A at alpha;
* A/B: users split 50/50, each user's metric is clicks per impression, and ``ab_stats.welch_test`` must find A
  significantly better at alpha.

For each design, power is measured with ``--reps`` experiments per user count (each count gets its own random
stream, so the search path does not change the answers) at counts found by doubling from ``--start`` users, then
bisecting in log scale until the counts around 80% are within 10% of each other. The table shows that bracket, and
the users at 80% read off a power curve Phi(c sqrt(n) - z_{1-alpha/2}) fitted to every measured point, which is less
noisy than any one point; the ratio uses the fitted counts. A power measured from 200 experiments has a standard
error of about 3 points, which moves a count by about 7%. The planned numbers (``required_users`` from a large
pilot; ``required_sample_size`` from the exact gap and the simulated per-user sd) are printed beside the simulated
ones as a check on the power formulas.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.ab_stats import required_sample_size, welch_test  # noqa: E402
from trending_assets.lib.interleaving import (  # noqa: E402
    effect_from_pilot,
    required_users,
    team_draft,
    verdict_from_counts,
)
from trending_assets.lib.rankers import Candidate, genre_taste, popularity, profile_from_clicks  # noqa: E402
from trending_assets.lib.simulator.audience import TASTE_CONCENTRATION  # noqa: E402
from trending_assets.lib.simulator.cascade import attraction_table, click_matrix, reach  # noqa: E402
from trending_assets.lib.simulator.scenarios import UNIVERSE  # noqa: E402

TARGET_POWER = 0.80
PILOT_USERS = 50_000  # large, so the planned numbers carry little noise of their own


@dataclass(frozen=True)
class World:
    """Per pool user: attractiveness of each position of the A list, of the B list, and of ``draws`` merged lists,
    with the merged lists' teams as +1 (A) / -1 (B)."""

    a: np.ndarray  # (pool, length)
    b: np.ndarray  # (pool, length)
    merged: np.ndarray  # (pool, draws, length)
    teams: np.ndarray  # (pool, draws, length)


def build_world(rng: np.random.Generator, movies: int, pool: int, history: int, taste_weight: float, length: int,
                draws: int) -> World:
    genres = [tuple(rng.choice(UNIVERSE, size=rng.integers(1, 4), replace=False)) for _ in range(movies)]
    candidates = [Candidate(f"m{j:04d}", float(p), g) for j, (p, g) in enumerate(
        zip(rng.lognormal(0, 1, movies), genres))]
    column = {c.movie_id: j for j, c in enumerate(candidates)}
    tastes = rng.dirichlet(np.full(len(UNIVERSE), TASTE_CONCENTRATION), size=pool)
    table = attraction_table(tastes, genres)  # (pool, movies)
    b_columns = [column[m] for m in popularity(candidates)[:length]]
    a, merged = np.empty((pool, length)), np.empty((pool, draws, length))
    teams = np.empty((pool, draws, length), dtype=np.int8)
    for user in range(pool):
        past = rng.choice(movies, size=history, p=table[user] / table[user].sum())
        ranking = genre_taste(candidates, profile_from_clicks([genres[j] for j in past]), taste_weight)[:length]
        a[user] = table[user, [column[m] for m in ranking]]
        for draw in range(draws):
            mix = team_draft(ranking, [candidates[j].movie_id for j in b_columns], length, rng)
            merged[user, draw] = table[user, [column[m] for m in mix.items]]
            teams[user, draw] = [1 if team == "A" else -1 for team in mix.teams]
    return World(a, table[:, b_columns], merged, teams)


def interleaving_counts(world: World, users: int, sessions: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """(wins_a, wins_b, ties) of one simulated interleaving experiment on ``users`` users."""
    who = rng.integers(len(world.a), size=users)
    margin, clicked_any = np.zeros(users), np.zeros(users, dtype=bool)
    for _ in range(sessions):
        draw = rng.integers(world.merged.shape[1], size=users)
        clicked = click_matrix(world.merged[who, draw], rng)
        margin += (clicked * world.teams[who, draw]).sum(axis=1)
        clicked_any |= clicked.any(axis=1)
    return int(np.sum(margin > 0)), int(np.sum(margin < 0)), int(np.sum(clicked_any & (margin == 0)))


def ab_arms(world: World, users: int, sessions: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clicks per impression of each user in the B (control) and A (treatment) arms of one simulated A/B test."""
    per_arm = users // 2
    who = rng.integers(len(world.a), size=2 * per_arm)

    def per_user(attraction: np.ndarray) -> np.ndarray:
        return sum(click_matrix(attraction, rng).sum(axis=1) for _ in range(sessions)) / sessions

    return per_user(world.b[who[:per_arm]]), per_user(world.a[who[per_arm:]])


def interleaving_power(world: World, users: int, reps: int, sessions: int, alpha: float, seed: int) -> float:
    rng = np.random.default_rng([seed, 1, users])
    return float(np.mean([verdict_from_counts(*interleaving_counts(world, users, sessions, rng), users,
                                              alpha=alpha).winner == "A" for _ in range(reps)]))


def ab_power(world: World, users: int, reps: int, sessions: int, alpha: float, seed: int) -> float:
    rng = np.random.default_rng([seed, 2, users])
    hits = 0
    for _ in range(reps):
        test = welch_test("clicks_per_impression", *ab_arms(world, users, sessions, rng), alpha)
        hits += test.significant and test.diff > 0
    return hits / reps


def search_power(power_at: Callable[[int], float], start: int, limit: int) -> dict[int, float]:
    """Measured power at every user count tried: doubling from ``start`` until the target is reached (or ``limit``
    passed), then bisecting in log scale until the bracket around the target is within 10%."""
    points: dict[int, float] = {}
    low, high = None, start
    while (points.setdefault(high, power_at(high))) < TARGET_POWER:
        if high >= limit:
            return points
        low, high = high, high * 2
    while low is not None and high / low > 1.1:
        middle = round(math.sqrt(low * high))
        points[middle] = power_at(middle)
        low, high = (low, middle) if points[middle] >= TARGET_POWER else (middle, high)
    return points


def bracket(points: dict[int, float]) -> tuple[int | None, int | None]:
    """The largest count measured below the target and the smallest measured at or above it."""
    below = [n for n, power in points.items() if power < TARGET_POWER]
    above = [n for n, power in points.items() if power >= TARGET_POWER]
    return max(below, default=None), min(above, default=None)


def fitted_users(points: dict[int, float], alpha: float) -> float:
    """Users at the target power from every measured point, so no single noisy point decides.

    Both tests are z-type tests, whose power is about Phi(c sqrt(n) - z_{1-alpha/2}); c is fitted by least squares on
    the probit scale, each point weighted by the inverse variance of its probit (phi(q)^2 / (p (1 - p))). Points
    below 10% or above 98% power are left out: their probits are unstable and say little about the crossing.
    """
    z = stats.norm.ppf(1 - alpha / 2)
    numerator = denominator = 0.0
    for n, power in points.items():
        if 0.10 < power < 0.98:
            q = stats.norm.ppf(power)
            weight = stats.norm.pdf(q) ** 2 / (power * (1 - power))
            numerator += weight * math.sqrt(n) * (q + z)
            denominator += weight * n
    return ((stats.norm.ppf(TARGET_POWER) + z) * denominator / numerator) ** 2 if numerator > 0 else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pool 4000, 100 experiments per user count, 2 draws")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--movies", type=int, default=100, help="candidates per request")
    parser.add_argument("--length", type=int, default=20, help="movies listed")
    parser.add_argument("--pool", type=int, default=20_000, help="users to draw experiment users from")
    parser.add_argument("--history", type=int, default=3, help="past clicks behind each user's genre profile")
    parser.add_argument("--taste-weight", type=float, default=0.04, help="genre_taste's blend weight")
    parser.add_argument("--sessions", type=int, default=1, help="impressions per user")
    parser.add_argument("--reps", type=int, default=200, help="simulated experiments per user count")
    parser.add_argument("--draws", type=int, default=4, help="team-draft merges pre-drawn per pool user")
    parser.add_argument("--start", type=int, default=16, help="first user count of the search")
    parser.add_argument("--limit", type=int, default=200_000, help="give up past this many users")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args(argv)
    if args.quick:
        args.pool, args.reps, args.draws = 4000, 100, 2

    print(f"machine: {describe(numpy=np.__version__, scipy=scipy.__version__)}")
    print(f"seed {args.seed}; {args.movies} candidates, lists of {args.length}, pool of {args.pool} users, "
          f"{args.history} past clicks per profile, taste weight {args.taste_weight:g}, {args.sessions} impression(s) "
          f"per user, {args.reps} experiments per user count, {args.draws} merges per user, alpha {args.alpha:g}, "
          f"target power {TARGET_POWER:.0%}")
    started = time.perf_counter()
    world = build_world(np.random.default_rng([args.seed, 0]), args.movies, args.pool, args.history,
                        args.taste_weight, args.length, args.draws)
    built = time.perf_counter() - started
    rate_a = float(np.mean(np.sum(reach(world.a) * world.a, axis=1)))
    rate_b = float(np.mean(np.sum(reach(world.b) * world.b, axis=1)))
    print(f"true gap (exact, cascade model, pool mean): genre_taste {rate_a:.4f} vs popularity {rate_b:.4f} expected "
          f"clicks per impression, {rate_a / rate_b - 1:+.1%}")

    # Planned sizes, to check the power formulas against the simulation below.
    pilot_rng = np.random.default_rng([args.seed, 3])
    pilot = verdict_from_counts(*interleaving_counts(world, PILOT_USERS, args.sessions, pilot_rng), PILOT_USERS,
                                "genre_taste", "popularity", args.alpha)
    p_win, tie_share = effect_from_pilot(pilot)
    planned_interleaving = required_users(p_win, tie_share, args.alpha, TARGET_POWER)
    control, treatment = ab_arms(world, PILOT_USERS, args.sessions, pilot_rng)
    sd = float(np.sqrt((control.var(ddof=1) + treatment.var(ddof=1)) / 2))
    planned_ab = 2 * required_sample_size(0, rate_a - rate_b, args.alpha, TARGET_POWER, kind="mean", sd=sd)
    print(f"pilot on {PILOT_USERS} users: {pilot.line()}")
    print(f"  p_win {p_win:.3f}, no-preference share {tie_share:.3f}; per-user sd of clicks per impression {sd:.3f}")

    searched = time.perf_counter()
    designs = {
        "team-draft interleaving + sign test": (
            lambda n: interleaving_power(world, n, args.reps, args.sessions, args.alpha, args.seed),
            planned_interleaving),
        "50/50 A/B + Welch t, clicks/impression": (
            lambda n: ab_power(world, n, args.reps, args.sessions, args.alpha, args.seed), planned_ab),
    }
    print(f"\nusers for {TARGET_POWER:.0%} power: bracket from the search (measured power), the crossing of a power "
          f"curve fitted to every point, and the formula's plan")
    print(f"{'design':<40} {'largest below':>16} {'smallest above':>16} {'fitted':>8} {'planned':>8}")
    fitted = {}
    for design, (power_at, plan) in designs.items():
        points = search_power(power_at, args.start, args.limit)
        low, high = bracket(points)
        fitted[design] = fitted_users(points, args.alpha)
        cells = [f"{n} ({points[n]:.0%})" if n else "-" for n in (low, high)]
        print(f"{design:<40} {cells[0]:>16} {cells[1]:>16} {fitted[design]:>8.0f} {plan:>8}")
        if high is None:
            print(f"  (no count up to {args.limit} users reached the target)")
    interleaved, ab = fitted.values()
    # One point's power has a standard error of sqrt(0.16 / reps); near 80% power moves about 0.4 per unit of
    # ln(users), so a count read off one point is good to about 1 / sqrt(reps) (7% at 200), a ratio to sqrt(2) times
    # that; the fit pools several points and does a little better.
    error = 1 / math.sqrt(args.reps)
    print(f"\nA/B needs {ab / interleaved:.1f}x the users of interleaving (fitted; planned "
          f"{planned_ab / planned_interleaving:.1f}x); each count is good to about +-{error:.0%} (one standard error), "
          f"the ratio to about +-{math.sqrt(2) * error:.0%}")
    print(f"\nworld {built:.1f} s, pilot {searched - started - built:.1f} s, searches "
          f"{time.perf_counter() - searched:.1f} s, total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Interleaving: compare two rankers on the same users by merging their lists and crediting clicks.

An A/B test must tell a ranker's effect apart from the large differences between users; in an interleaving
experiment every user sees one list merged from both rankers and compares them side by side. A user's preference
is the sign of (clicks credited to A - clicks credited to B) over all their impressions; the verdict is a sign test
over users with a preference. ``bench/interleaving.py`` measures how many fewer users this needs.

Constructions (Radlinski, Kurup & Joachims 2008; Joachims 2003); ``Interleaved.teams`` encodes, per position:

* team draft: the ranker with fewer picks so far (a coin flip when equal) adds its best movie not yet listed.
  ``teams[i]`` is the team that picked position i, and a click there credits that team.
* balanced: the two lists are walked in step, one coin flip deciding which goes first, each adding its next movie
  unless already listed. ``teams[i]`` is the list whose turn added the movie, for the log only: credit comes from
  the movies' ranks in the original lists (kept on ``Interleaved``) at click time. With the deepest click on the
  movie m, let k = min(rank of m in A, rank of m in B) (1-based); A is credited with the number of clicked movies
  in its top k, B with the number in its top k.

When one list runs out, the other fills the remaining positions (both originals stop there; serving wants a full
list). Rankers over the same candidates never run out early, so this only matters for lists of unequal length.
Randomness comes from a numpy Generator; serving seeds it with ``seed_for(salt, user, request)`` so the same request
gets the same list in every process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TEAMS = ("A", "B")


@dataclass(frozen=True)
class Interleaved:
    """A merged list: its movie ids, the team of each position (see the module docstring) and the two inputs."""

    items: list[str]
    teams: list[str]
    method: str
    a: tuple[str, ...]
    b: tuple[str, ...]


def team_draft(a: Sequence[str], b: Sequence[str], length: int, rng: np.random.Generator) -> Interleaved:
    """Team-draft interleaving of rankings ``a`` and ``b``, at most ``length`` movies long."""
    _check_length(length)
    lists, heads, picks = (a, b), [0, 0], [0, 0]
    items, teams, placed = [], [], set()
    while len(items) < length:
        for side in (0, 1):  # skip movies the other team already picked
            while heads[side] < len(lists[side]) and lists[side][heads[side]] in placed:
                heads[side] += 1
        open_sides = [side for side in (0, 1) if heads[side] < len(lists[side])]
        if not open_sides:
            break
        if len(open_sides) == 1:
            side = open_sides[0]
        elif picks[0] != picks[1]:
            side = 0 if picks[0] < picks[1] else 1
        else:
            side = int(rng.integers(2))
        movie = lists[side][heads[side]]
        items.append(movie)
        teams.append(TEAMS[side])
        placed.add(movie)
        picks[side] += 1
    return Interleaved(items, teams, "team_draft", tuple(a), tuple(b))


def balanced(a: Sequence[str], b: Sequence[str], length: int, rng: np.random.Generator) -> Interleaved:
    """Balanced interleaving of rankings ``a`` and ``b``, at most ``length`` movies long."""
    _check_length(length)
    a_first = bool(rng.integers(2))
    ka = kb = 0
    items, teams, placed = [], [], set()
    while len(items) < length and (ka < len(a) or kb < len(b)):
        take_a = kb >= len(b) or (ka < len(a) and (ka < kb or (ka == kb and a_first)))
        movie, team = (a[ka], "A") if take_a else (b[kb], "B")
        ka, kb = (ka + 1, kb) if take_a else (ka, kb + 1)
        if movie not in placed:
            items.append(movie)
            teams.append(team)
            placed.add(movie)
    return Interleaved(items, teams, "balanced", tuple(a), tuple(b))


METHODS = {"team_draft": team_draft, "balanced": balanced}


def seed_for(salt: str, user_id: str, request_key: str) -> int:
    """A seed fixed by (salt, user, request): the first 8 bytes of sha256("salt:user:request").

    sha256 rather than ``hash()``, which Python salts per process, so every replica serves the same list.
    """
    return int.from_bytes(hashlib.sha256(f"{salt}:{user_id}:{request_key}".encode()).digest()[:8], "big")


def interleave_for(a: Sequence[str], b: Sequence[str], length: int, salt: str, user_id: str, request_key: str,
                   method: str = "team_draft") -> Interleaved:
    """The reproducible interleaving a serving request gets: ``method`` seeded with ``seed_for``."""
    if method not in METHODS:
        raise ValueError(f"unknown interleaving method {method!r}; use one of {', '.join(METHODS)}")
    return METHODS[method](a, b, length, np.random.default_rng(seed_for(salt, user_id, request_key)))


@dataclass(frozen=True)
class Outcome:
    """Clicks credited to A and to B on one impression of an interleaved list."""

    credit_a: int
    credit_b: int

    @property
    def winner(self) -> str | None:
        """The ranker with more credited clicks, "A" or "B"; None for a tie (or no click)."""
        return None if self.credit_a == self.credit_b else "A" if self.credit_a > self.credit_b else "B"


def credit(interleaved: Interleaved, clicked: Sequence[int] | Sequence[str], method: str | None = None) -> Outcome:
    """Credit an impression's clicks (positions in ``interleaved.items``, or movie ids) to A and B.

    ``method`` defaults to the one that built the list: "team_draft" counts clicks on each team's positions,
    "balanced" applies the top-k rule of the module docstring.
    """
    method = method or interleaved.method
    positions = sorted({_position(interleaved, click) for click in clicked})
    if method == "team_draft":
        on_a = sum(interleaved.teams[p] == "A" for p in positions)
        return Outcome(on_a, len(positions) - on_a)
    if method != "balanced":
        raise ValueError(f"unknown interleaving method {method!r}; use one of {', '.join(METHODS)}")
    if not positions:
        return Outcome(0, 0)
    movies = {interleaved.items[p] for p in positions}
    deepest = interleaved.items[positions[-1]]
    k = min(_rank(interleaved.a, deepest), _rank(interleaved.b, deepest))
    return Outcome(len(movies.intersection(interleaved.a[:k])), len(movies.intersection(interleaved.b[:k])))


@dataclass(frozen=True)
class InterleavingVerdict:
    """Which ranker users prefer: a sign test over users with a preference.

    ``users`` counts every exposed user; ``ties`` those who clicked but credited both rankers equally (users without
    clicks are neither). ``preference`` is A's share of the users with a preference, with its Wilson interval at
    ``1 - alpha``; ``winner`` follows the exact two-sided binomial p-value.
    """

    name_a: str
    name_b: str
    users: int
    wins_a: int
    wins_b: int
    ties: int
    preference: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    winner: str | None

    @property
    def delta_ab(self) -> float:
        """Chapelle et al.'s (2012) Delta_AB = (wins_A + ties / 2) / (wins + ties) - 0.5 over users with clicks."""
        clicked = self.wins_a + self.wins_b + self.ties
        return (self.wins_a + self.ties / 2) / clicked - 0.5 if clicked else 0.0

    def line(self) -> str:
        """The verdict in a sentence, the preferred ranker first (A when there is no difference at all)."""
        a_leads = self.wins_a >= self.wins_b
        first, second = (self.name_a, self.name_b) if a_leads else (self.name_b, self.name_a)
        won, lost = (self.wins_a, self.wins_b) if a_leads else (self.wins_b, self.wins_a)
        share, low, high = ((self.preference, self.ci_low, self.ci_high) if a_leads
                            else (1 - self.preference, 1 - self.ci_high, 1 - self.ci_low))
        head = f"{first} beats {second}" if self.winner else f"no significant preference between {first} and {second}"
        return (f"{head}: {won} vs {lost} users prefer {'it' if self.winner else first} ({share:.0%} of {won + lost} "
                f"with a preference, {1 - self.alpha:.0%} CI [{low:.0%}, {high:.0%}]), p={self.p_value:.2g}")


def verdict(impressions: Iterable[tuple[str, Outcome]], name_a: str = "A", name_b: str = "B",
            alpha: float = 0.05) -> InterleavingVerdict:
    """The verdict over ``(user_id, outcome)`` impressions: each user's credits are summed before taking sides."""
    margins: dict[str, int] = {}
    clicked: set[str] = set()
    for user_id, outcome in impressions:
        margins[user_id] = margins.get(user_id, 0) + outcome.credit_a - outcome.credit_b
        if outcome.credit_a or outcome.credit_b:
            clicked.add(user_id)
    wins_a = sum(m > 0 for m in margins.values())
    wins_b = sum(m < 0 for m in margins.values())
    return verdict_from_counts(wins_a, wins_b, len(clicked) - wins_a - wins_b, len(margins), name_a, name_b, alpha)


def verdict_from_counts(wins_a: int, wins_b: int, ties: int, users: int, name_a: str = "A", name_b: str = "B",
                        alpha: float = 0.05) -> InterleavingVerdict:
    """The verdict from per-user counts (for simulations that tally preferences themselves)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05); got {alpha!r}")
    if min(wins_a, wins_b, ties) < 0 or wins_a + wins_b + ties > users:
        raise ValueError(f"need non-negative counts with wins_a + wins_b + ties <= users; got {wins_a}, {wins_b}, "
                         f"{ties} of {users}")
    decided = wins_a + wins_b
    if decided == 0:  # nobody prefers either: no evidence, and the share is undefined
        return InterleavingVerdict(name_a, name_b, users, 0, 0, ties, 0.5, 0.0, 1.0, 1.0, alpha, None)
    test = stats.binomtest(wins_a, decided, 0.5)
    ci = test.proportion_ci(confidence_level=1 - alpha, method="wilson")
    winner = ("A" if wins_a > wins_b else "B") if test.pvalue < alpha else None
    return InterleavingVerdict(name_a, name_b, users, wins_a, wins_b, ties, wins_a / decided, float(ci.low),
                               float(ci.high), float(test.pvalue), alpha, winner)


def required_users(p_win: float, tie_share: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users to expose so the two-sided sign test at ``alpha`` finds a preference with probability ``power``.

    ``p_win``: the share of users with a preference who prefer A; ``tie_share``: the share of exposed users with no
    preference (no click, or equal credit). Normal approximation of the sign test on m users with a preference: the
    share of A wins has sd 0.5 / sqrt(m) under the null and sqrt(p (1 - p) / m) under the alternative, so
    m = ((z_{1-alpha/2} 0.5 + z_power sqrt(p (1 - p))) / (p - 0.5))^2, ignoring the far tail. The exact binomial
    test is conservative, so m gets the continuity correction m / 4 (1 + sqrt(1 + 2 / (m |p - 0.5|)))^2 (Fleiss),
    which matters below a few hundred users; then m / (1 - tie_share) exposed users, rounded up. The number of users
    with a preference varies from experiment to experiment, which costs a few points of power when it is small.
    """
    if not 0 < p_win < 1 or p_win == 0.5:
        raise ValueError(f"p_win must be in (0, 1) and not 0.5 (no preference needs infinitely many users); "
                         f"got {p_win!r}")
    if not (0 <= tie_share < 1 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"need tie_share in [0, 1) and alpha, power in (0, 1); got {tie_share!r}, {alpha!r}, "
                         f"{power!r}")
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    decided = ((z_alpha * 0.5 + z_power * math.sqrt(p_win * (1 - p_win))) / (p_win - 0.5)) ** 2
    decided = decided / 4 * (1 + math.sqrt(1 + 2 / (decided * abs(p_win - 0.5)))) ** 2
    return math.ceil(decided / (1 - tie_share))


def effect_from_pilot(pilot: InterleavingVerdict) -> tuple[float, float]:
    """(p_win, tie_share) for ``required_users`` estimated from a pilot experiment's verdict."""
    if pilot.wins_a + pilot.wins_b == 0:
        raise ValueError("the pilot has no user with a preference; run it on more users before planning")
    return pilot.preference, 1 - (pilot.wins_a + pilot.wins_b) / pilot.users


def _check_length(length: int) -> None:
    if length < 0:
        raise ValueError(f"length caps the merged list, so it cannot be negative; got {length!r}")


def _position(interleaved: Interleaved, click: int | str) -> int:
    if isinstance(click, str):
        if click not in interleaved.items:
            raise ValueError(f"clicked movie {click!r} was not in the interleaved list")
        return interleaved.items.index(click)
    if not 0 <= int(click) < len(interleaved.items):
        raise ValueError(f"clicked position {click!r} is outside the list of {len(interleaved.items)} movies")
    return int(click)


def _rank(ranking: tuple[str, ...], movie: str) -> int:
    """1-based rank of the movie, or past the end when the ranking lacks it (it then bounds nothing)."""
    return ranking.index(movie) + 1 if movie in ranking else len(ranking) + 1

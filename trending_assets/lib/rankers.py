"""Rankers for ``GET /trending``: pure functions from candidate movies (and a user's genre profile) to an order.

Every ranker in ``RANKERS`` has one signature, ``(candidates, profile) -> movie ids, best first``, so the serving
layer and interleaving experiments pick rankers by name. A profile maps genre -> weight (``profile_from_clicks``
builds one from a user's past clicks); rankers that do not personalise ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# genre_taste's default blend of taste and popularity: 0 is the popularity order, 1 ranks by taste alone.
TASTE_WEIGHT = 0.5


@dataclass(frozen=True)
class Candidate:
    """A movie that may be listed: its id, its popularity (higher is more popular) and its genres."""

    movie_id: str
    popularity: float
    genres: tuple[str, ...]


Ranker = Callable[[Sequence[Candidate], Mapping[str, float]], list[str]]


def popularity(candidates: Sequence[Candidate]) -> list[str]:
    """Movie ids by popularity, most popular first; equal popularity in movie_id order, so the order is total."""
    return [c.movie_id for c in _by_popularity(candidates)]


def genre_taste(candidates: Sequence[Candidate], profile: Mapping[str, float],
                taste_weight: float = TASTE_WEIGHT) -> list[str]:
    """Movie ids by a blend of popularity rank and the user's taste for each movie's genres, best first.

    ``score = (1 - taste_weight) * prior + taste_weight * affinity``. The prior is ``1 - rank / n`` for the
    movie's popularity rank (0 = most popular): ranks rather than raw popularity, so the prior's scale does not
    depend on how skewed popularity is. The affinity is the mean profile weight of the movie's genres divided by
    the best affinity among the candidates, so both terms span [0, 1] and only the ratios of profile weights matter.
    An empty profile (a user without clicks), or one that matches no candidate, gives the popularity order; equal
    scores keep popularity order.
    """
    if not 0 <= taste_weight <= 1:
        raise ValueError(f"taste_weight blends taste and popularity, so it must be in [0, 1]; got {taste_weight!r}")
    ranked = _by_popularity(candidates)
    affinity = [_affinity(c.genres, profile) for c in ranked]
    best = max(affinity, default=0.0)
    if best <= 0:
        return [c.movie_id for c in ranked]
    n = len(ranked)
    scores = [(1 - taste_weight) * (1 - rank / n) + taste_weight * a / best for rank, a in enumerate(affinity)]
    order = sorted(range(n), key=lambda rank: (-scores[rank], rank))
    return [ranked[rank].movie_id for rank in order]


def profile_from_clicks(clicked_genres: Sequence[tuple[str, ...]]) -> dict[str, float]:
    """A genre profile summing to 1 from the genres of the movies a user clicked; {} without (genred) clicks.

    Each click is one unit of interest shared equally among the clicked movie's genres, so a three-genre movie
    does not count three times as much as a single-genre one.
    """
    weights: dict[str, float] = {}
    for genres in clicked_genres:
        for genre in genres:
            weights[genre] = weights.get(genre, 0.0) + 1 / len(genres)
    total = sum(weights.values())
    return {genre: weight / total for genre, weight in sorted(weights.items())} if total else {}


def _popularity_ranker(candidates: Sequence[Candidate], profile: Mapping[str, float]) -> list[str]:
    return popularity(candidates)


RANKERS: dict[str, Ranker] = {"popularity": _popularity_ranker, "genre_taste": genre_taste}


def _by_popularity(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (-c.popularity, c.movie_id))


def _affinity(genres: tuple[str, ...], profile: Mapping[str, float]) -> float:
    return sum(profile.get(genre, 0.0) for genre in genres) / len(genres) if genres else 0.0

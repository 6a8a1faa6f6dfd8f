"""A position-biased cascade click model, so ranking experiments on ``/trending`` lists are reproducible.

A user scans the list top-down, position 0 first, and leaves for good at some point:

* at each position reached, the user clicks with the movie's attractiveness
  ``min(ATTRACTION_RATE * appeal(taste, genres), MAX_ATTRACTION)``; ``traffic.appeal`` is 1 for a uniform taste,
  so a movie of average appeal draws ``ATTRACTION_RATE``, a movie in the user's favourite genre several times that;
* after a click the user goes on with probability ``CONTINUE`` (a click often ends the visit);
* after skipping position k the user goes on with probability ``((k + 1) / (k + 2)) ** ETA``, chosen so a user who
  clicks nothing reaches position k with probability ``1 / (1 + k) ** ETA``: attention decays with depth.

So what a ranker puts on top matters most, and a good movie at the top also shadows the ones below it. The walk is
a Markov chain, so the expected number of clicks on a list is exact (``expected_clicks``), which lets benchmarks
state the true quality gap between two rankers without sampling noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trending_assets.lib.simulator.scenarios import UNIVERSE
from trending_assets.lib.simulator.traffic import BASE_CLICK_RATE, MAX_CLICK, appeal

ATTRACTION_RATE = BASE_CLICK_RATE  # click probability of an examined movie of average appeal, as in traffic
MAX_ATTRACTION = MAX_CLICK
ETA = 1.0  # position-bias exponent: without clicks, position 9 is examined by 1 user in 10
CONTINUE = 0.5  # probability of scanning on after a click


def attractiveness(movie_ids: Sequence[str], taste: np.ndarray, genres_of: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Each listed movie's click probability once examined, for a user with ``taste`` over ``UNIVERSE``."""
    return np.array([min(ATTRACTION_RATE * appeal(taste, genres_of[movie]), MAX_ATTRACTION) for movie in movie_ids])


def attraction_table(tastes: np.ndarray, genres: Sequence[Sequence[str]]) -> np.ndarray:
    """``attractiveness`` of every movie (columns, genres given per movie) to every user (rows of ``tastes``) at once.

    The same numbers as ``attractiveness``, as one matrix product, so benchmarks can score large user pools.
    """
    # Row j spreads 1 over movie j's genres, so tastes @ membership.T is the mean taste over each movie's genres.
    membership = np.zeros((len(genres), len(UNIVERSE)))
    for row, movie_genres in enumerate(genres):
        for genre in movie_genres:
            if genre in UNIVERSE:
                membership[row, UNIVERSE.index(genre)] += 1 / len(movie_genres)
    appeals = np.atleast_2d(tastes) @ membership.T * len(UNIVERSE)
    return np.minimum(ATTRACTION_RATE * appeals, MAX_ATTRACTION)


def skip_continue(length: int) -> np.ndarray:
    """Probability of scanning on after skipping each of ``length`` positions (the position bias)."""
    k = np.arange(length)
    return ((k + 1) / (k + 2)) ** ETA


def reach(attraction: np.ndarray) -> np.ndarray:
    """Probability of reaching each position; ``attraction`` is (positions,) or (users, positions)."""
    attraction = np.asarray(attraction, dtype=float)
    go_on = attraction * CONTINUE + (1 - attraction) * skip_continue(attraction.shape[-1])
    reached = np.cumprod(go_on, axis=-1)
    # Position 0 is always reached; position k + 1 is reached when the user went on from every position up to k.
    return np.concatenate([np.ones_like(reached[..., :1]), reached[..., :-1]], axis=-1)


def expected_clicks(movie_ids: Sequence[str], taste: np.ndarray, genres_of: Mapping[str, Sequence[str]]) -> float:
    """Exact expected number of clicks of one user on one impression of the list."""
    attraction = attractiveness(movie_ids, taste, genres_of)
    return float(np.sum(reach(attraction) * attraction))


def click_matrix(attraction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sampled clicks (bool, same shape) for each row of ``attraction`` (users, positions): one impression each.

    Vectorised over users, so benchmarks can simulate thousands of impressions per position step.
    """
    attraction = np.atleast_2d(np.asarray(attraction, dtype=float))
    users, length = attraction.shape
    patience = skip_continue(length)
    scanning = np.ones(users, dtype=bool)
    clicked = np.zeros((users, length), dtype=bool)
    for k in range(length):
        clicked[:, k] = scanning & (rng.random(users) < attraction[:, k])
        scanning &= rng.random(users) < np.where(clicked[:, k], CONTINUE, patience[k])
    return clicked


def clicks(movie_ids: Sequence[str], taste: np.ndarray, genres_of: Mapping[str, Sequence[str]],
           rng: np.random.Generator) -> list[int]:
    """The positions one user clicks on one impression of the list, top first."""
    if not movie_ids:
        return []
    row = click_matrix(attractiveness(movie_ids, taste, genres_of), rng)[0]
    return [int(k) for k in np.flatnonzero(row)]

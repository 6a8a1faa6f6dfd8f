"""The audience: users with latent genre tastes, and the feedback events their sessions leave behind.

A user's session shows impressions of recent movies; a click is likelier the better the movie's true genres
match the user's taste, and views, ratings and thumbs follow clicks. Now and then a user who sees a movie
with missing or wrong genres sends a correction holding its true genres.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np

from trending_assets.lib.simulator.catalog import Movie
from trending_assets.lib.simulator.scenarios import UNIVERSE
from trending_assets.lib.simulator.world import SECONDS_PER_DAY, Stream, World, timestamp

TASTE_CONCENTRATION = 0.4  # Dirichlet alpha: below 1, most users care for a few genres
ACTIVE_SHARE = 0.6  # users with a session on a given day
IMPRESSIONS = (6, 16)  # per session, upper bound exclusive
BASE_CLICK_RATE = 0.08  # for a movie of average appeal to the user
VIEW_RATE = 0.7
RATING_RATE = 0.35
THUMBS_RATE = 0.25
CORRECTION_RATE = 0.03  # of impressions of mislabeled movies


def user_ids(world: World) -> list[str]:
    """``u00000``, ``u00001``, ...: one per user, in the order of ``user_tastes``' rows."""
    return [f"u{index:05d}" for index in range(world.users)]


def user_tastes(world: World) -> np.ndarray:
    """One row per user: the share of their interest in each genre of ``UNIVERSE`` (rows sum to one)."""
    rng = world.rng(Stream.USERS)
    return rng.dirichlet(np.full(len(UNIVERSE), TASTE_CONCENTRATION), size=world.users)


def feedback_events(world: World, day: date, tastes: np.ndarray, movies: list[Movie]) -> list[dict]:
    """The day's feedback events on recent ``movies`` in time order, ids numbered in that order."""
    rng = world.rng(Stream.FEEDBACK, day)
    appeal = _appeal(tastes, movies)
    popularity = np.array([movie.popularity_at(day) for movie in movies])
    exposure = popularity / popularity.sum()
    users = user_ids(world)
    events: list[tuple[int, int, dict]] = []
    for user in np.flatnonzero(rng.random(world.users) < ACTIVE_SHARE):
        count = min(int(rng.integers(*IMPRESSIONS)), len(movies))
        shown = rng.choice(len(movies), size=count, replace=False, p=exposure)
        # Sessions start early enough that even a long film watched to the end is rated the same day.
        start = int(rng.integers(0, SECONDS_PER_DAY - 4 * 3600))
        times = start + np.cumsum(rng.integers(5, 60, size=count))
        draws, jitter = rng.random((count, 5)), rng.normal(size=(count, 2))
        for j, index in enumerate(shown):
            impression = _Impression(users[int(user)], movies[int(index)], int(times[j]), events)
            impression.react(float(appeal[int(user), int(index)]), draws[j], jitter[j])
    events.sort(key=lambda item: (item[0], item[1]))
    return [
        {"event_id": f"e{day:%Y%m%d}-{number:06d}", **event} | {"occurred_at": timestamp(day, seconds)}
        for number, (seconds, _, event) in enumerate(events)
    ]


def _appeal(tastes: np.ndarray, movies: list[Movie]) -> np.ndarray:
    """users x movies: taste for the movie's true genres, scaled so a uniform taste scores 1."""
    position = {genre: i for i, genre in enumerate(UNIVERSE)}
    genres = np.zeros((len(UNIVERSE), len(movies)))
    for column, movie in enumerate(movies):
        for genre in movie.true_genres:
            genres[position[genre], column] = 1.0 / len(movie.true_genres)
    return tastes @ genres * len(UNIVERSE)


class _Impression:
    """One impression and what the user does after it, appended to the day's events."""

    def __init__(self, user_id: str, movie: Movie, seconds: int, events: list):
        self.user_id, self.movie, self.seconds, self.events = user_id, movie, seconds, events

    def emit(self, event_type: str, delay: int, value: float | None = None, payload: str | None = None) -> None:
        event = {
            "user_id": self.user_id,
            "movie_id": self.movie.movie_id,
            "event_type": event_type,
            "value": value,
            "payload": payload,
            "model_version": None,
            "experiment_id": None,
            "variant": None,
        }
        self.events.append((self.seconds + delay, len(self.events), event))

    def react(self, appeal: float, draws: np.ndarray, jitter: np.ndarray) -> None:
        self.emit("impression", 0)
        if self.movie.mislabeled and draws[0] < CORRECTION_RATE:
            self.emit("genre_correction", 4, payload=json.dumps({"genres": list(self.movie.true_genres)}))
        if draws[1] >= min(BASE_CLICK_RATE * appeal, 0.9):
            return
        self.emit("click", 2)
        if draws[2] >= VIEW_RATE:
            return
        watched = float(np.clip(0.25 + 0.2 * appeal + 0.2 * jitter[0], 0.02, 1.0))
        self.emit("view", 20, value=round(watched, 2))
        feeling = appeal - 1.0 + 0.7 * jitter[1]
        finished = 30 + int(watched * self.movie.runtime_minutes * 60)
        if draws[3] < RATING_RATE:
            rating = int(np.clip(round(self.movie.vote_average + 1.5 * feeling), 0, 10))
            self.emit("rating", finished, value=rating)
        if draws[4] < THUMBS_RATE:
            self.emit("thumbs_up" if feeling > 0 else "thumbs_down", finished + 1)

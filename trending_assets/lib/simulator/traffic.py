"""Simulated users browsing the serving API, whose behaviour depends on how good the served genres are.

Click model (documented so verdicts are reproducible): each active user opens ``/trending`` once per session and
sees each listed movie with the genres the serving model gave it. The user judges a movie by its *shown*
genres: the click probability is ``BASE_CLICK_RATE * perceived appeal`` (capped at 0.9), where appeal is the
user's taste for a genre set, scaled so a uniform taste scores 1 (as in ``audience``). What happens after the
click depends on the *true* genres: the watched fraction grows with true appeal, and a click on a movie that
looked better than it is (true appeal below perceived by more than ``LETDOWN``) ends in a thumbs down with
probability ``THUMBS_DOWN_RATE``. A user who sees wrong genres corrects them with probability
``CORRECTION_RATE`` (the correction holds the true genres). When the list carries vibe tags (a vibe-tag A/B
test), the click probability is also scaled by ``VIBE_BASE + VIBE_WEIGHT * tag_appeal`` (``vibe_tags.tag_appeal``:
how well the tags describe the true genres), so better tags earn more clicks by a known amount.

So a model that tags more movies correctly gets more clicks on correctly tagged movies, longer watches and fewer
thumbs down, and a model that tags badly gets more corrections: the effect of a model on each metric follows
from its accuracy, which ``expected_rates`` computes exactly for the tests.

The API's visitors are their own population (``v000000``, ...; tastes drawn like the world's users, with
``TASTE_CONCENTRATION``), larger than the world's few hundred organic users because experiments need thousands
of users. Their champion-only traffic before an experiment is the pre-period CUPED uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator.scenarios import UNIVERSE
from trending_assets.lib.simulator.audience import TASTE_CONCENTRATION
from trending_assets.lib.simulator.writer import MOVIES_FILE

BASE_CLICK_RATE = 0.10
MAX_CLICK = 0.9
LETDOWN = 0.5
THUMBS_DOWN_RATE = 0.6
CORRECTION_RATE = 0.05
LIST_LENGTH = 20
VIBE_BASE, VIBE_WEIGHT = 0.7, 0.6


@dataclass(frozen=True)
class Audience:
    """The API's visitors (tastes over ``UNIVERSE``) and every movie's true genres, from the ground truth."""

    user_ids: list[str]
    tastes: np.ndarray
    true_genres: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, home: TrendingHome, users: int, seed: int = 0) -> "Audience":
        """``users`` visitors (the same ones for the same seed) and the true genres of every simulated movie."""
        path = home.ground_truth / MOVIES_FILE
        if not path.exists():
            raise FileNotFoundError(f"no simulated world in {home.ground_truth}; run `trending simulate` first")
        movies = pl.read_parquet(path)
        tastes = np.random.default_rng([seed, 11]).dirichlet(np.full(len(UNIVERSE), TASTE_CONCENTRATION), size=users)
        truth = dict(zip(movies["movie_id"].to_list(), (tuple(g) for g in movies["true_genres"].to_list())))
        return cls([f"v{index:06d}" for index in range(users)], tastes, truth)


def appeal(taste: np.ndarray, genres) -> float:
    """The user's taste for a genre set, 1 for a uniform taste; genres outside the world count for nothing."""
    inside = [UNIVERSE.index(g) for g in genres if g in UNIVERSE]
    if not genres:
        return 0.0
    return float(taste[inside].sum() / len(genres) * len(UNIVERSE)) if inside else 0.0


@dataclass
class DayTraffic:
    requests: int = 0
    errors: int = 0
    users: int = 0
    events: dict[str, int] = field(default_factory=dict)


def simulate_day(
    trending: Callable[[str, int], dict],
    feedback: Callable[[list[dict]], object],
    audience: Audience,
    day: date,
    users: int,
    seed: int = 0,
    active_share: float = 0.7,
    clock: Callable[[datetime], None] | None = None,
) -> DayTraffic:
    """One day of traffic from the first ``users`` users: ``trending(user_id, limit)`` is a router or HTTP call,
    ``feedback(events)`` posts what users did. ``clock(moment)`` (optional) is told the simulated time before
    each request, so an in-process router stamps events on the simulated day."""
    if users > len(audience.user_ids):
        raise ValueError(f"{users} users asked for, but the audience has {len(audience.user_ids)}; load it with more")
    rng = np.random.default_rng([seed, day.toordinal(), 7])
    traffic = DayTraffic()
    active = np.flatnonzero(rng.random(users) < active_share)
    starts = np.sort(rng.integers(0, 20 * 3600, size=len(active)))
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for index, start in zip(active, starts):
        user_id, moment = audience.user_ids[index], midnight + timedelta(seconds=int(start))
        if clock is not None:
            clock(moment)
        traffic.requests += 1
        try:
            answer = trending(user_id, LIST_LENGTH)
        except Exception:  # the API's failures are its error rate, measured from the exposure log
            traffic.errors += 1
            continue
        traffic.users += 1
        events = _react(answer, audience.tastes[index], audience.true_genres, moment, rng)
        for event in events:
            traffic.events[event["event_type"]] = traffic.events.get(event["event_type"], 0) + 1
        if events:
            feedback(events)
    return traffic


def _react(answer: dict, taste: np.ndarray, truth: dict, moment: datetime, rng) -> list[dict]:
    stamp = {"model_version": answer["model_version"], "experiment_id": answer["experiment_id"],
             "variant": answer["variant"]}
    events = []
    for offset, item in enumerate(answer["items"]):
        true = truth.get(item["movie_id"])
        if true is None:
            continue
        shown = item["genres"]
        when = (moment + timedelta(seconds=5 * offset + 2)).isoformat().replace("+00:00", "Z")
        base = {"user_id": answer["user_id"], "movie_id": item["movie_id"], **stamp, "occurred_at": when}
        if set(shown) != set(true) and rng.random() < CORRECTION_RATE:
            events.append({**base, "event_type": "genre_correction", "payload": {"genres": list(true)}})
        perceived, real = appeal(taste, shown), appeal(taste, true)
        if rng.random() >= min(BASE_CLICK_RATE * perceived * _vibe_factor(item.get("vibe"), true), MAX_CLICK):
            continue
        # as a client would, the click names the response and position it came from (interleaving credits by it)
        events.append({**base, "event_type": "click",
                       "payload": {"request_id": answer["request_id"], "position": offset + 1}})
        watched = float(np.clip(0.2 + 0.25 * real + 0.1 * rng.normal(), 0.02, 1.0))
        events.append({**base, "event_type": "view", "value": round(watched, 3)})
        if perceived - real > LETDOWN and rng.random() < THUMBS_DOWN_RATE:
            events.append({**base, "event_type": "thumbs_down"})
    return events


def _vibe_factor(vibe: dict | None, true: tuple[str, ...]) -> float:
    if vibe is None:
        return 1.0
    from trending_assets.lib.vibe_tags import Vibe, tag_appeal

    return VIBE_BASE + VIBE_WEIGHT * tag_appeal(Vibe(tuple(vibe["tags"]), vibe["summary"], ""), true)


def expected_rates(shown: dict[str, tuple[str, ...]], audience: Audience, movies: list[str], users: int) -> dict:
    """Exact per-impression expectations of a model's metrics (``shown``: movie -> the model's genres) for the
    first ``users`` users seeing ``movies``: the ground truth the experiment verdicts are checked against."""
    clicks = correct = thumbs = watched = 0.0
    n = 0
    for index in range(users):
        taste = audience.tastes[index]
        for movie in movies:
            true, genres = audience.true_genres[movie], shown[movie]
            p = min(BASE_CLICK_RATE * appeal(taste, genres), MAX_CLICK)
            real = appeal(taste, true)
            clicks += p
            correct += p if set(genres) == set(true) else 0.0
            thumbs += p * THUMBS_DOWN_RATE if appeal(taste, genres) - real > LETDOWN else 0.0
            watched += p * float(np.clip(0.2 + 0.25 * real, 0.02, 1.0))
            n += 1
    return {"click_rate": clicks / n, "correct_click_rate": correct / n, "thumbs_down_rate": thumbs / n,
            "watch_per_impression": watched / n}


def payload_json(events: list[dict]) -> list[dict]:
    """Events with their payload as JSON text, as the landing contract stores it (in-process feedback)."""
    return [{**e, "payload": json.dumps(e["payload"]) if isinstance(e.get("payload"), dict) else e.get("payload")}
            for e in events]

"""The parameters that define one simulated world, and the random streams derived from them.

Every random draw comes from a stream keyed by (seed, date, scenario, purpose), never from a generator carried
from one day to the next, so any day can be simulated on its own and comes out the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum

import numpy as np

from trending_assets.lib.simulator.scenarios import SCENARIOS

SECONDS_PER_DAY = 86_400


class Stream(IntEnum):
    """What a random stream is used for; separate streams keep, e.g., noise from shifting the clean rows."""

    CATALOG = 0
    SCRAPE = 1
    REVIEWS = 2
    FEEDBACK = 3
    USERS = 4
    NOISE_MOVIES = 5
    NOISE_REVIEWS = 6
    NOISE_FEEDBACK = 7


@dataclass(frozen=True)
class World:
    """Everything that shapes what happens in the world (the scraper's noise does not)."""

    scenario: str
    seed: int
    drift_start: date
    movies_per_day: int
    users: int

    def rng(self, stream: Stream, day: date | None = None) -> np.random.Generator:
        """The generator for one purpose on one day (``day=None``: timeless, e.g. the users)."""
        ordinal = day.toordinal() if day is not None else 0
        return np.random.default_rng([self.seed, ordinal, SCENARIOS.index(self.scenario), int(stream)])


def timestamp(day: date, seconds: int) -> str:
    """ISO-8601 UTC for ``seconds`` after midnight of ``day``, clamped into that day: ``2026-01-05T13:04:22Z``."""
    seconds = min(max(int(seconds), 0), SECONDS_PER_DAY - 1)
    hours, rest = divmod(seconds, 3600)
    return f"{day.isoformat()}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"

"""Scenarios: how the simulated world's genre mix and language change over time.

Every scenario starts from the same eight-genre world. Drifting scenarios change it from ``drift_start`` on;
``seasonal`` changes it with the calendar instead.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np

from trending_assets.lib.simulator.vocabulary import GENRE_WORDS, NEW_SCIENCE_FICTION_WORDS

# The index of a scenario seeds its random streams, so new scenarios go at the end.
SCENARIOS: tuple[str, ...] = ("stable", "genre_shift", "vocabulary_drift", "new_genre", "seasonal")

BASE_MIX: dict[str, float] = {
    "drama": 0.22,
    "comedy": 0.18,
    "action": 0.15,
    "thriller": 0.12,
    "romance": 0.10,
    "horror": 0.08,
    "science_fiction": 0.08,
    "animation": 0.07,
}
NEW_GENRE = "documentary"
NEW_GENRE_WEIGHT = 0.12
# Every genre the world can ever produce; users hold a taste for each, even before it appears.
UNIVERSE: tuple[str, ...] = (*BASE_MIX, NEW_GENRE)

SHIFT_FACTORS: dict[str, float] = {"horror": 3.0, "science_fiction": 3.0, "comedy": 0.3}

DRIFTED_GENRE = "science_fiction"
# One word in five survives the drift: the genre is recognisable, but most of its signal is new.
DRIFTED_WORDS: tuple[str, ...] = GENRE_WORDS[DRIFTED_GENRE][::5] + NEW_SCIENCE_FICTION_WORDS

SEASONAL_GENRE = "horror"
SEASONAL_PEAK = (10, 15)
SEASONAL_STRENGTH = 1.2


def check_scenario(scenario: str) -> None:
    """Raise a ValueError naming the valid scenarios when ``scenario`` is not one of them."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")


def seasonal_factor(day: date) -> float:
    """How much more often the seasonal genre is released on ``day``: about 3.3x mid-October, 0.3x in April."""
    peak = date(day.year, *SEASONAL_PEAK).timetuple().tm_yday
    angle = 2 * math.pi * (day.timetuple().tm_yday - peak) / 365.25
    return math.exp(SEASONAL_STRENGTH * math.cos(angle))


def genre_mix(scenario: str, day: date, drift_start: date) -> np.ndarray:
    """The probability of each genre in ``UNIVERSE`` being drawn for a movie released into the world on ``day``."""
    weights = {genre: BASE_MIX.get(genre, 0.0) for genre in UNIVERSE}
    drifted = day >= drift_start
    if scenario == "genre_shift" and drifted:
        for genre, factor in SHIFT_FACTORS.items():
            weights[genre] *= factor
    elif scenario == "new_genre" and drifted:
        weights[NEW_GENRE] = NEW_GENRE_WEIGHT
    elif scenario == "seasonal":
        weights[SEASONAL_GENRE] *= seasonal_factor(day)
    mix = np.array([weights[genre] for genre in UNIVERSE])
    return mix / mix.sum()


def vocabularies(scenario: str, day: date, drift_start: date) -> dict[str, tuple[str, ...]]:
    """Each genre's signal words on ``day``."""
    if scenario == "vocabulary_drift" and day >= drift_start:
        return {**GENRE_WORDS, DRIFTED_GENRE: DRIFTED_WORDS}
    return GENRE_WORDS


def describe(scenario: str, drift_start: date) -> dict:
    """What changes in the scenario and when, in plain JSON, for ``ground_truth/scenario.json``."""
    before_day = date.fromordinal(drift_start.toordinal() - 1)
    mixes = {
        "before": genre_mix(scenario, before_day, drift_start),
        "after": genre_mix(scenario, drift_start, drift_start),
    }
    description: dict = {
        f"genres_{when}": [genre for genre, share in zip(UNIVERSE, mix) if share > 0] for when, mix in mixes.items()
    }
    description |= {
        f"mix_{when}": {genre: round(float(share), 4) for genre, share in zip(UNIVERSE, mix) if share > 0}
        for when, mix in mixes.items()
    }
    changed = {}
    if scenario == "vocabulary_drift":
        old, new = set(GENRE_WORDS[DRIFTED_GENRE]), set(DRIFTED_WORDS)
        changed[DRIFTED_GENRE] = {"removed": sorted(old - new), "added": sorted(new - old), "kept": sorted(old & new)}
    description["vocabulary_changes"] = changed
    description["new_genre"] = NEW_GENRE if scenario == "new_genre" else None
    description["shift_factors"] = SHIFT_FACTORS if scenario == "genre_shift" else {}
    description["seasonal"] = (
        {"genre": SEASONAL_GENRE, "peak_month_day": list(SEASONAL_PEAK), "strength": SEASONAL_STRENGTH}
        if scenario == "seasonal"
        else None
    )
    return description

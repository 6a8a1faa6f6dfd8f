"""Scraper garbage: the broken lines a real scraper lands now and then, for demos of quarantine.

Four kinds, chosen evenly: a line cut off mid-object, a required field missing, a field of the wrong type,
and a value out of its range (for feedback, an event type outside the contract's list). Every garbage line
replaces a clean one, so row counts stay comparable.
"""

from __future__ import annotations

import json

import numpy as np

KINDS = ("truncated", "missing_field", "wrong_type", "out_of_range")

# A field the landing contract requires, per entity; not feedback's event_id, which ingest derives when missing.
REQUIRED_FIELD = {"movies": "movie_id", "reviews": "review_id", "feedback": "user_id"}
TIME_FIELD = {"movies": "scraped_at", "reviews": "scraped_at", "feedback": "occurred_at"}
WRONG_TYPE = {"movies": ("popularity", "very"), "reviews": ("rating", "great"), "feedback": ("value", "lots")}


def to_line(record: dict) -> str:
    """One compact JSON object; non-ASCII stays readable because the files are UTF-8."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def to_lines(entity: str, records: list[dict], noise: float, rng: np.random.Generator) -> tuple[list[str], int]:
    """Serialise ``records``, about ``noise`` of them replaced by garbage; returns the lines and the bad count."""
    lines = [to_line(record) for record in records]
    if noise <= 0 or not records:
        return lines, 0
    bad = rng.choice(len(records), size=int(rng.binomial(len(records), noise)), replace=False)
    for index in bad:
        lines[int(index)] = _garbage(entity, records[int(index)], KINDS[int(rng.integers(len(KINDS)))], rng)
    return lines, len(bad)


def _garbage(entity: str, record: dict, kind: str, rng: np.random.Generator) -> str:
    broken = dict(record)
    if kind == "truncated":
        line = to_line(record)
        return line[: int(rng.integers(5, len(line) - 1))]
    if kind == "missing_field":
        del broken[REQUIRED_FIELD[entity] if rng.random() < 0.5 else TIME_FIELD[entity]]
    elif kind == "wrong_type":
        field, value = WRONG_TYPE[entity]
        broken[field] = value
    elif entity == "movies":
        broken["vote_average"] = float(rng.choice([-1.0, 11.5, 42.0]))
    elif entity == "reviews":
        broken["rating"] = int(rng.choice([-3, 11, 100]))
    else:
        broken["event_type"] = str(rng.choice(["hover", "swipe", "share"]))
    return to_line(broken)

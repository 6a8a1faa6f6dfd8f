"""What changed in the landing zone since the last look, and which day partitions that touches.

The state is a plain dict (it lives in a sensor cursor): per file, its cheap fingerprint (size, mtime), its
checksum and the partitions it touched. A file is identified by path + checksum, so a file whose bytes did not
change never triggers a load again, even if it was touched or copied over.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from trending_assets.lib import landing
from trending_assets.lib.home import ENTITIES
from trending_assets.lib.ingest import file_partitions


@dataclass
class LandingChanges:
    state: dict[str, dict]  # the new cursor state
    partitions: dict[date, set[str]] = field(default_factory=lambda: defaultdict(set))  # day -> entities
    changed_files: list[str] = field(default_factory=list)  # "movies/x.jsonl@sha" of new/changed/removed files
    refused: list[landing.RefusedFile] = field(default_factory=list)
    files_seen: dict[str, int] = field(default_factory=dict)  # entity -> files present


def detect_changes(landing_root: Path, previous: dict[str, dict], now: datetime | None = None) -> LandingChanges:
    """Compare the landing zone with ``previous`` state; see the module docstring."""
    changes = LandingChanges(state={})
    for entity in ENTITIES:
        files, refused = landing.scan(landing_root / entity)
        changes.refused.extend(refused)
        changes.files_seen[entity] = len(files)
        for landed in files:
            name = landing.relative_name(landed.path, landing_root)
            old = previous.get(name)
            fingerprint = list(landed.fingerprint)
            if old and old["fingerprint"] == fingerprint:
                changes.state[name] = old
                continue
            digest = landing.checksum(landed.path)
            if old and old["sha256"] == digest:
                changes.state[name] = {**old, "fingerprint": fingerprint}
                continue
            touched = sorted(file_partitions(landed, entity, now))
            changes.state[name] = {
                "entity": entity,
                "fingerprint": fingerprint,
                "sha256": digest,
                "partitions": [d.isoformat() for d in touched],
            }
            days = set(touched) | {date.fromisoformat(d) for d in (old or {}).get("partitions", [])}
            for day in days:
                changes.partitions[day].add(entity)
            changes.changed_files.append(f"{name}@{digest[:12]}")
    for name, old in previous.items():
        if name not in changes.state:  # removed: its partitions must be rebuilt without it
            for day in old["partitions"]:
                changes.partitions[date.fromisoformat(day)].add(old["entity"])
            changes.changed_files.append(f"{name}@removed")
    return changes


def contiguous_ranges(partitions: dict[date, set[str]]) -> list[tuple[date, date, frozenset[str]]]:
    """Group touched days into runs: consecutive days that touch the same entities share one range.

    A day with nothing landed in between splits a range, so a run never loads a day no file touched.
    """
    ranges: list[tuple[date, date, frozenset[str]]] = []
    for day in sorted(partitions):
        entities = frozenset(partitions[day])
        if ranges and ranges[-1][2] == entities and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day, entities)
        else:
            ranges.append((day, day, entities))
    return ranges


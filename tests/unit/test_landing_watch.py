"""Which landing changes trigger which day partitions (the logic behind landing_sensor)."""

import json
import os
from datetime import date

from trending_assets.lib.landing_watch import contiguous_ranges, detect_changes


def _movie(day: str, movie_id: str = "m1") -> str:
    return json.dumps({"movie_id": movie_id, "title": "T", "scraped_at": f"{day}T10:00:00Z"}) + "\n"


def test_new_changed_touched_and_removed_files(tmp_path):
    landing = tmp_path / "landing"
    (landing / "movies").mkdir(parents=True)
    path = landing / "movies" / "a.jsonl"
    path.write_text(_movie("2026-01-05") + _movie("2026-01-06", "m2"))

    first = detect_changes(landing, {})
    assert dict(first.partitions) == {date(2026, 1, 5): {"movies"}, date(2026, 1, 6): {"movies"}}
    assert first.state["movies/a.jsonl"]["partitions"] == ["2026-01-05", "2026-01-06"]

    assert not detect_changes(landing, first.state).partitions  # nothing changed

    os.utime(path, ns=(10**18, 10**18))  # touched, same bytes: identified by checksum, not reloaded
    touched = detect_changes(landing, first.state)
    assert not touched.partitions and not touched.changed_files

    path.write_text(_movie("2026-01-07"))  # rewritten: old days must be rebuilt without its rows
    changed = detect_changes(landing, touched.state)
    assert set(changed.partitions) == {date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)}

    path.unlink()
    removed = detect_changes(landing, changed.state)
    assert dict(removed.partitions) == {date(2026, 1, 7): {"movies"}}
    assert removed.changed_files == ["movies/a.jsonl@removed"]


def test_symlink_outside_the_zone_is_refused_not_read(tmp_path):
    landing = tmp_path / "landing"
    (landing / "reviews").mkdir(parents=True)
    secret = tmp_path / "secret.jsonl"
    secret.write_text("{}\n")
    (landing / "reviews" / "x.jsonl").symlink_to(secret)
    changes = detect_changes(landing, {})
    assert not changes.partitions
    assert "outside the landing zone" in changes.refused[0].reason


def test_contiguous_ranges_split_on_gaps_and_entity_sets():
    days = {
        date(2026, 1, 1): {"movies", "reviews"},
        date(2026, 1, 2): {"movies", "reviews"},
        date(2026, 1, 3): {"movies"},
        date(2026, 1, 5): {"movies"},
    }
    assert contiguous_ranges(days) == [
        (date(2026, 1, 1), date(2026, 1, 2), frozenset({"movies", "reviews"})),
        (date(2026, 1, 3), date(2026, 1, 3), frozenset({"movies"})),
        (date(2026, 1, 5), date(2026, 1, 5), frozenset({"movies"})),
    ]

"""Serving event log: JSON lines, rotation by size and age, only complete files visible, threads, and recovery."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from trending_assets.lib import landing, serving_log
from trending_assets.lib.serving_log import EventLog, recover

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def event(i: int, **extra: object) -> dict:
    return {"event_id": f"e{i}", "user_id": f"user-{i % 7}", "movie_id": f"m{i}", "event_type": "impression",
            "value": None, "payload": json.dumps({"rank": i}), "model_version": "v1", "experiment_id": None,
            "variant": None, "occurred_at": "2024-04-01T12:00:00Z", **extra}


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def lines(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def test_events_are_compact_json_lines(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    at = datetime(2024, 4, 1, 12, tzinfo=timezone.utc)
    log.write([event(1), event(2, occurred_at=at)])
    path = log.close()
    text = path.read_text()
    expected = [event(1), event(2, occurred_at=str(at))]  # values JSON lacks are written with str()
    assert lines([path]) == expected
    assert text == "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in expected)  # compact, one a line
    assert log.written == 2


def test_part_file_is_hidden_until_rotated(tmp_path: Path) -> None:
    log = EventLog(tmp_path, clock=FakeClock())
    assert log.rotate() is None and log.close() is None  # nothing written, nothing published
    log.write([event(1)])
    [part] = tmp_path.iterdir()
    assert part.name == f".serving-{os.getpid()}-{int(START * 1000)}.jsonl.part"
    assert landing.scan(tmp_path) == ([], [])  # the ingestion scanner ignores it
    path = log.rotate()
    assert re.fullmatch(rf"serving_20231114T221320_{os.getpid()}_\d{{5}}\.jsonl", path.name)
    assert visible(tmp_path) == [path] and list(tmp_path.iterdir()) == [path]
    assert [f.path for f in landing.scan(tmp_path)[0]] == [path]
    log.write([event(2)])  # a fresh part file
    second = log.close()
    assert second != path and lines([second]) == [event(2)]


def test_a_failed_write_leaves_no_half_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = EventLog(tmp_path)
    log.write([event(1)])
    real_write = os.write

    def disk_full(fd: int, data: memoryview) -> int:
        real_write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serving_log.os, "write", disk_full)
    with pytest.raises(OSError):
        log.write([event(2), event(3)])
    monkeypatch.setattr(serving_log.os, "write", real_write)
    log.write([event(4)])
    assert [e["event_id"] for e in lines([log.close()])] == ["e1", "e4"]
    assert log.written == 2


def test_rotation_by_size(tmp_path: Path) -> None:
    log = EventLog(tmp_path, max_bytes=1000, clock=FakeClock())
    for i in range(100):
        log.write([event(i)])
    log.close()
    files = visible(tmp_path)
    assert len(files) > 5
    assert all(f.stat().st_size >= 1000 for f in files[:-1])
    assert all(f.stat().st_size < 1000 + len(json.dumps(event(99))) + 1 for f in files)
    assert [e["event_id"] for e in lines(files)] == [f"e{i}" for i in range(100)]  # names sort in write order


def test_rotation_by_age(tmp_path: Path) -> None:
    clock = FakeClock()
    log = EventLog(tmp_path, max_age_s=30, clock=clock)
    log.write([event(1)])
    clock.now += 29
    assert log.maybe_rotate() is None
    log.write([event(2)])
    assert visible(tmp_path) == []
    clock.now += 1
    assert log.maybe_rotate() is not None  # a quiet period still publishes
    assert log.maybe_rotate() is None  # nothing new
    log.write([event(3)])
    clock.now += 30
    log.write([event(4)])  # the write that finds the file old rotates it
    assert [[e["event_id"] for e in lines([f])] for f in visible(tmp_path)] == [["e1", "e2"], ["e3", "e4"]]


def test_visible_files_are_only_ever_complete(tmp_path: Path) -> None:
    log = EventLog(tmp_path, max_bytes=2000)
    seen: dict[Path, str] = {}
    problems: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for path in visible(tmp_path):
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                if not data.endswith(b"\n"):
                    problems.append(f"{path.name} ends mid-line")
                if seen.setdefault(path, digest) != digest:
                    problems.append(f"{path.name} changed after it appeared")
                lines([path])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(0, 3000, 3):
            log.write([event(i), event(i + 1), event(i + 2)])
        log.close()
    finally:
        done.set()
        watcher.join()
    assert problems == [] and len(seen) > 10
    assert len(lines(visible(tmp_path))) == 3000


def test_eight_threads_writing_at_once(tmp_path: Path) -> None:
    log = EventLog(tmp_path, max_bytes=8192)

    def writer(thread: int) -> None:
        for i in range(500):
            log.write([event(i, event_id=f"t{thread}-{i}")])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    ids = [e["event_id"] for e in lines(visible(tmp_path))]  # every line parses
    assert len(ids) == 4000 and set(ids) == {f"t{t}-{i}" for t in range(8) for i in range(500)}
    assert log.written == 4000


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_recover_publishes_what_a_dead_writer_left(tmp_path: Path) -> None:
    pid = _dead_pid()
    complete = "".join(json.dumps(event(i)) + "\n" for i in range(3))
    (tmp_path / f".serving-{pid}-{int(START * 1000)}.jsonl.part").write_text(complete + '{"event_id": "e3", "us')
    (tmp_path / f".serving-{pid}-{int(START * 1000) + 5}.jsonl.part").write_text('{"half a line')
    mine = tmp_path / f".serving-{os.getpid()}-{int(START * 1000)}.jsonl.part"
    mine.write_text(complete)  # a live writer: left alone
    other = tmp_path / f".clicks-{pid}-{int(START * 1000)}.jsonl.part"
    other.write_text(complete)  # another prefix: left alone

    [made] = recover(tmp_path)
    assert made.name == f"serving_20231114T221320_{pid}_{int(START * 1000)}_recovered.jsonl"
    assert made.read_text() == complete  # the partial last line is dropped
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made.name, mine.name, other.name])
    assert recover(tmp_path) == []


def test_recover_with_force_publishes_a_live_writers_file(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.write([event(i) for i in range(5)])  # the process "crashes" here: never rotated
    assert recover(tmp_path) == []  # its writer (this process) is alive
    [made] = recover(tmp_path, force=True)
    assert [e["event_id"] for e in lines([made])] == [f"e{i}" for i in range(5)]
    assert landing.scan(tmp_path)[0][0].path == made

"""The serving API's event log: append-only JSON lines in the landing zone's feedback folder.

Events go to a hidden part file (the landing scanner ignores ``.name`` files) and become visible only by an atomic
rename once complete, so ingestion never reads half a file and the API never opens DuckDB. A writer that dies
leaves its part file behind; ``recover`` publishes what it had written.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# Shared by every log in the process, so two logs with one prefix never give two files the same visible name.
_SEQUENCE = itertools.count(1)


def _visible_name(prefix: str, start_ms: int, pid: int, tail: str) -> str:
    return f"{prefix}_{time.strftime('%Y%m%dT%H%M%S', time.gmtime(start_ms / 1000))}_{pid}_{tail}.jsonl"


class EventLog:
    """Thread-safe writer of rotated JSON-lines files; see the module docstring."""

    def __init__(self, folder: Path, prefix: str = "serving", max_bytes: int = 4 << 20, max_age_s: float = 30.0,
                 clock: Callable[[], float] = time.time):
        self.folder, self.prefix, self.clock = folder, prefix, clock
        self.max_bytes, self.max_age_s = max_bytes, max_age_s
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._part: Path | None = None
        self._opened_at = 0.0
        self._start_ms = 0  # names the files: the open time, i.e. about the time of the first event
        self._size = 0
        self._written = 0

    @property
    def written(self) -> int:
        """Events written since creation."""
        return self._written

    def write(self, events: Iterable[dict]) -> None:
        """Append ``events`` as one JSON line each, with a single write, then rotate if the file is big or old."""
        lines = [json.dumps(event, separators=(",", ":"), default=str) + "\n" for event in events]
        if not lines:
            return
        data = "".join(lines).encode()
        with self._lock:
            fd = self._fd if self._fd is not None else self._open()
            view = memoryview(data)
            try:
                while view:  # one write() unless the kernel takes less (a full disk, a signal)
                    view = view[os.write(fd, view):]
            except OSError:
                os.ftruncate(fd, self._size)  # drop the half-written lines, or the next write would continue one
                raise
            self._size += len(data)
            self._written += len(lines)
            if self._size >= self.max_bytes or self.clock() - self._opened_at >= self.max_age_s:
                self._rotate()

    def rotate(self) -> Path | None:
        """Publish the current part file under its visible name; None when nothing was written to it."""
        with self._lock:
            return self._rotate()

    def maybe_rotate(self) -> Path | None:
        """Publish the current part file if it is older than ``max_age_s`` (call on a timer: quiet periods too)."""
        with self._lock:
            if self._fd is not None and self.clock() - self._opened_at >= self.max_age_s:
                return self._rotate()
            return None

    def close(self) -> Path | None:
        """Publish what was written; a later write starts a new file."""
        return self.rotate()

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._opened_at = self.clock()
        start_ms = int(self._opened_at * 1000)
        while True:  # O_EXCL: another log of this process may have opened a part file in the same millisecond
            self._part = self.folder / f".{self.prefix}-{os.getpid()}-{start_ms}.jsonl.part"
            try:
                self._fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                start_ms += 1
                continue
            self._start_ms, self._size = start_ms, 0
            return self._fd

    def _rotate(self) -> Path | None:
        if self._fd is None or self._part is None:
            return None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        target = self.folder / _visible_name(self.prefix, self._start_ms, os.getpid(), f"{next(_SEQUENCE):05d}")
        os.replace(self._part, target)
        return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return True


def recover(folder: Path, prefix: str = "serving", force: bool = False) -> list[Path]:
    """Publish part files left by dead writers (any part file with ``force``), returning the visible files made.

    A crash can cut the last line short: it is dropped, the rest renamed to ``..._recovered.jsonl``; an empty
    part file is deleted. Use ``force`` only when no writer can be running, e.g. at startup of the only writer.
    """
    pattern = re.compile(rf"\.{re.escape(prefix)}-(\d+)-(\d+)\.jsonl\.part")
    made: list[Path] = []
    for part in sorted(folder.glob(f".{prefix}-*.jsonl.part")):
        match = pattern.fullmatch(part.name)
        if not match or (not force and _alive(int(match[1]))):
            continue
        data = part.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep == 0:
            part.unlink()
            continue
        with open(part, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
        target = folder / _visible_name(prefix, int(match[2]), int(match[1]), f"{match[2]}_recovered")
        os.replace(part, target)
        made.append(target)
    return made

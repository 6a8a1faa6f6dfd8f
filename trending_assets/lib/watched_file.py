"""Hot reload of a file the serving API reads: has it changed since we last read it?"""

from __future__ import annotations

from pathlib import Path


def new_stamp(path: Path, stamp: tuple[int, int] | None) -> tuple[int, int] | None:
    """The file's (mtime_ns, size) when it exists and differs from ``stamp``; None when it is missing or unchanged."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    current = (stat.st_mtime_ns, stat.st_size)
    return None if current == stamp else current

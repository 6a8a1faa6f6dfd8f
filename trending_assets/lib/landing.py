"""The landing zone: which files are there, what they contain (by checksum), and which are refused."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class LandedFile:
    path: Path  # absolute, as found in the landing folder (a symlink stays a symlink)
    size_bytes: int
    mtime_ns: int

    @property
    def format(self) -> str:
        return FORMATS[self.path.suffix.lower()]

    @property
    def fingerprint(self) -> tuple[int, int]:
        """Cheap change detector; the checksum is only recomputed when this changes."""
        return self.size_bytes, self.mtime_ns


@dataclass(frozen=True)
class RefusedFile:
    path: Path
    reason: str


def scan(folder: Path) -> tuple[list[LandedFile], list[RefusedFile]]:
    """Landed files in ``folder``, sorted by name, and the ones refused with a reason.

    Hidden files (``.name``) are a writer's temp files and are ignored. Symlinks are followed only while they
    resolve inside the landing zone (the parent of ``folder``); anything else is refused, never read.
    """
    files: list[LandedFile] = []
    refused: list[RefusedFile] = []
    if not folder.is_dir():
        return files, refused
    zone = folder.resolve().parent
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix.lower() not in FORMATS:
            refused.append(RefusedFile(path, f"unsupported file type {path.suffix or '(none)'}; "
                                             f"use one of {', '.join(sorted(FORMATS))}"))
            continue
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(zone):
                refused.append(RefusedFile(path, f"symlink points outside the landing zone ({target}); refused"))
                continue
        if not path.is_file():
            refused.append(RefusedFile(path, "not a regular file"))
            continue
        stat = path.stat()
        files.append(LandedFile(path, stat.st_size, stat.st_mtime_ns))
    return files, refused


def checksum(path: Path) -> str:
    """sha256 of the file's bytes: a file is identified by path + checksum."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def relative_name(path: Path, landing_root: Path) -> str:
    """The path recorded in tables and cursors: relative to the landing zone, so a moved home still matches."""
    try:
        return str(path.relative_to(landing_root))
    except ValueError:
        return os.fspath(path)

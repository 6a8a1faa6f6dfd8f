"""Files another process reads while we replace them (the deployment plan, the policy layer, report images): written
to a hidden temp file beside the target, flushed to disk, then renamed into place, so a reader sees the old file or
the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes(path: Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically, creating its folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, value, indent: int | None = None) -> Path:
    """Replace ``path`` with ``value`` as JSON, atomically."""
    return write_bytes(path, json.dumps(value, indent=indent).encode("utf-8"))

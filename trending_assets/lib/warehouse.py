"""DuckDB access under the single-writer rule.

DuckDB lets one process hold a database file for writing. The platform therefore uses short-lived writer
connections that wait (with backoff) while another process holds the lock, Dagster pools keep writing steps from
overlapping, and analysts read a published snapshot (``warehouse_snapshot.duckdb``), never the live file.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

LOCK_WAIT_S = 300.0


def is_lock_error(error: Exception) -> bool:
    """Whether a DuckDB error says another process holds the file's lock."""
    text = str(error).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


@contextmanager
def connect(path: Path, read_only: bool = False, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database, waiting up to ``wait_s`` while another process holds its write lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if not is_lock_error(error) or time.monotonic() > deadline:
                raise
            log.info("warehouse %s is locked by another process; retrying in %.2fs", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists. Readers ask before querying: a read-only connection (the analysts'
    snapshot) cannot create a table that was never written."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()[0][0]
    return bool(found)


def publish_snapshot(warehouse: Path, snapshot: Path) -> int:
    """Copy the warehouse to the read-only snapshot atomically; return its size in bytes.

    Holding the write connection while copying keeps other writers out; CHECKPOINT first folds the WAL into
    the file. Readers with the old snapshot open keep reading it (the rename does not touch their inode).
    """
    with connect(warehouse) as con:
        con.execute("CHECKPOINT")
        temporary = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
        shutil.copyfile(warehouse, temporary)
    os.replace(temporary, snapshot)
    return snapshot.stat().st_size


@contextmanager
def read_snapshot(snapshot: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published snapshot, for analysts and the CLI."""
    if not snapshot.exists():
        raise FileNotFoundError(
            f"no warehouse snapshot at {snapshot}; run `trending materialize` or `make demo` first"
        )
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        yield con
    finally:
        con.close()

"""Load one day-partition of one landing entity into its raw table, atomically and idempotently.

A partition is rebuilt from every landed file that touches it: its rows in ``raw.<table>`` and its rejects in
``raw.<table>_rejects`` are replaced in one transaction, so a crash leaves the previous state and a re-run gives
the same rows. ``raw.landing_files`` remembers each file (path + checksum) and the partitions it touches, so
files that cannot touch the partition are skipped without being read again.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from trending_assets.lib import landing, readers
from trending_assets.lib.contracts import Contract, contract_for
from trending_assets.lib.quarantine import PARSED_TABLE, validate
from trending_assets.lib.raw_schema import ddl

log = logging.getLogger(__name__)

DUPLICATE = "duplicate event_id"


@dataclass(frozen=True)
class FileLoad:
    source_file: str
    checksum: str
    lines_read: int  # in the whole file, all partitions
    partitions: tuple[date, ...]
    accepted: int  # in this partition
    rejected: int  # in this partition


@dataclass
class PartitionLoad:
    entity: str
    partition_date: date
    accepted: int = 0
    rejected: int = 0
    files: list[FileLoad] = field(default_factory=list)
    refused: list[landing.RefusedFile] = field(default_factory=list)
    reject_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        """Re-delivered feedback events among the rejects (at-least-once delivery, not bad data)."""
        return self.reject_reasons.get(DUPLICATE, 0)

    @property
    def reject_rate(self) -> float:
        """Share of bad lines, not counting re-delivered duplicates."""
        bad = self.rejected - self.duplicates
        total = self.accepted + bad
        return bad / total if total else 0.0


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in ddl():
        con.execute(statement)


def parse_file(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    landed: landing.LandedFile,
    now: datetime,
    accepted_text: bool = True,
) -> str:
    """Read and validate one landed file into a temp table (see ``quarantine.validate``); return its name."""
    lines = readers.read_lines(con, landed)
    unterminated = None
    if landed.format == "jsonl" and not readers.ends_with_newline(landed):
        last = con.execute(f"SELECT max(line_number) FROM {lines}").fetchall()[0][0]
        unterminated = last
    fallback = datetime.fromtimestamp(landed.mtime_ns / 1e9, UTC).date()
    parsed = validate(con, contract, lines, now, unterminated, fallback, accepted_text)
    con.execute(f"DROP TABLE {lines}")
    return parsed


def file_partitions(landed: landing.LandedFile, entity: str, now: datetime | None = None) -> set[date]:
    """The partitions a landed file touches (accepted and rejected lines), read without the warehouse."""
    with duckdb.connect() as con:
        parsed = parse_file(con, contract_for(entity), landed, now or utc_now())
        return {row[0] for row in con.execute(f"SELECT DISTINCT partition_date FROM {parsed}").fetchall()}


@dataclass(frozen=True)
class _KnownFile:
    fingerprint: tuple[int, int]
    checksum: str
    partitions: list[date]
    first_seen_at: datetime


def _known_files(con: duckdb.DuckDBPyConnection, entity: str) -> dict[str, _KnownFile]:
    """The most recently landed indexed version of each path (a re-landed version's mtime is refreshed)."""
    rows = con.execute(
        "SELECT path, size_bytes, mtime_ns, checksum, partitions, first_seen_at FROM raw.landing_files WHERE entity = ? "
        "QUALIFY row_number() OVER (PARTITION BY path ORDER BY mtime_ns DESC, first_seen_at DESC) = 1",
        [entity],
    ).fetchall()
    return {path: _KnownFile((size, mtime), checksum, parts, seen) for path, size, mtime, checksum, parts, seen in rows}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _accumulate(con: duckdb.DuckDBPyConnection, parsed: str, source: str, day: date, files_before: int) -> None:
    """Add the rows of ``day`` from one parsed file to the view ``_partition_rows``.

    Most partitions come from one file: its parsed table is kept and read through the view, not copied. A second
    file turns the rows so far into a table and appends to it, so no more than one whole file is ever held besides
    the partition's rows.
    """
    rows = f"SELECT *, {_literal(source)} AS source_file FROM {{table}} WHERE partition_date = DATE '{day}'"
    if files_before == 0:
        con.execute("DROP TABLE IF EXISTS _partition_file")
        con.execute(f"ALTER TABLE {parsed} RENAME TO _partition_file")
        con.execute(f"CREATE OR REPLACE TEMP VIEW _partition_rows AS {rows.format(table='_partition_file')}")
        return
    if files_before == 1:
        _materialise(con, "SELECT * FROM _partition_rows")
        con.execute("DROP TABLE _partition_file")
    con.execute(f"INSERT INTO _partition_table {rows.format(table=parsed)}")


def _materialise(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Make ``_partition_rows`` read a table holding the result of ``query``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _partition_next AS {query}")
    con.execute("DROP TABLE IF EXISTS _partition_table")
    con.execute("ALTER TABLE _partition_next RENAME TO _partition_table")
    con.execute("CREATE OR REPLACE TEMP VIEW _partition_rows AS SELECT * FROM _partition_table")


def _first_seen(con: duckdb.DuckDBPyConnection, source: str, digest: str) -> datetime | None:
    rows = con.execute(
        "SELECT first_seen_at FROM raw.landing_files WHERE path = ? AND checksum = ?", [source, digest]
    ).fetchall()
    return rows[0][0] if rows else None


def _dedupe_feedback(con: duckdb.DuckDBPyConnection) -> None:
    """Derive a stable event_id where missing; a repeated event_id is accepted once, later copies rejected."""
    _materialise(
        con,
        f"""SELECT * REPLACE (
                 CASE WHEN reason IS NULL AND dup_rank > 1
                      THEN '{DUPLICATE}: ' || event_id || ' first accepted from ' || first_file
                           || ' line ' || first_line
                      ELSE reason END AS reason)
        FROM (
            SELECT *,
                   row_number() OVER w AS dup_rank,
                   first_value(source_file) OVER w AS first_file,
                   first_value(line_number) OVER w AS first_line
            FROM (SELECT * REPLACE (COALESCE(event_id, 'evt_' || left(sha256(CAST(struct_pack(
                                      u := user_id, m := movie_id, t := event_type, o := occurred_at, v := value,
                                      p := payload) AS VARCHAR)), 24)) AS event_id),
                         event_id IS NULL AS event_id_derived
                  FROM _partition_rows)
            -- the earliest occurrence wins, as in staging.stg_feedback_events
            WINDOW w AS (PARTITION BY CASE WHEN reason IS NULL THEN event_id END
                         ORDER BY occurred_at, source_file, line_number)
        )""",
    )


def load_partition(
    con: duckdb.DuckDBPyConnection,
    landing_root: Path,
    entity: str,
    day: date,
    now: datetime | None = None,
) -> PartitionLoad:
    """Rebuild partition ``day`` of ``entity`` from the landing zone; see the module docstring."""
    contract = contract_for(entity)
    now = now or utc_now()
    ensure_raw_schema(con)
    files, refused = landing.scan(landing_root / entity)
    for item in refused:
        log.warning("refused %s: %s", item.path, item.reason)
    report = PartitionLoad(entity, day, refused=refused)
    known = _known_files(con, entity)
    dedupe = contract.entity == "feedback"  # accepted lines may still be rejected as duplicates: keep their text
    index_rows = []
    with ThreadPoolExecutor(max_workers=1) as hasher:
        for landed in files:
            source = landing.relative_name(landed.path, landing_root)
            cached = known.get(source)
            if cached and cached.fingerprint == landed.fingerprint and day not in cached.partitions:
                continue
            if cached and cached.fingerprint != landed.fingerprint:
                digest = landing.checksum(landed.path)  # touched or rewritten: is it content seen before?
                as_of = _first_seen(con, source, digest) or now
                parsed = parse_file(con, contract, landed, as_of, accepted_text=dedupe)
            else:
                # Hash on a second core while DuckDB splits the file into lines, which runs on one.
                hashing = hasher.submit(landing.checksum, landed.path)
                # "In the future" is judged as of when the file first landed, so a re-load gives the same rows.
                as_of = cached.first_seen_at if cached else now
                parsed = parse_file(con, contract, landed, as_of, accepted_text=dedupe)
                digest = hashing.result()
            lines_read, partitions = con.execute(
                f"SELECT count(*), list_sort(list_distinct(list(partition_date))) FROM {parsed}"
            ).fetchall()[0]
            index_rows.append(
                (entity, source, digest, landed.size_bytes, landed.mtime_ns, lines_read, partitions or [], now)
            )
            if day not in (partitions or []):
                continue
            _accumulate(con, parsed, source, day, len(report.files))
            report.files.append(FileLoad(source, digest, lines_read, tuple(partitions), 0, 0))
    if not report.files:  # nothing landed for this day: the partition becomes empty
        _empty_rows(con, contract)
    elif dedupe:
        _dedupe_feedback(con)
    _replace_partition(con, contract, day, now, index_rows)
    _summarise(con, report)
    _drop_scratch(con)
    return report


def _drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Free the temp tables of this load; a connection often loads a range of days in turn."""
    con.execute("DROP VIEW IF EXISTS _partition_rows")
    for table in ("_partition_file", "_partition_table", PARSED_TABLE):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _empty_rows(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    _materialise(
        con,
        "SELECT *, CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS raw_text "
        f"FROM raw.{contract.table} WHERE false",
    )


def _replace_partition(
    con: duckdb.DuckDBPyConnection, contract: Contract, day: date, now: datetime, index_rows: list[tuple]
) -> None:
    table = f"raw.{contract.table}"
    raw_columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    selected = ", ".join(
        f"CAST(? AS TIMESTAMP) AS {c}" if c == "loaded_at" else c for c in raw_columns
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table} WHERE partition_date = ?", [day])
        con.execute(f"INSERT INTO {table} BY NAME SELECT {selected} FROM _partition_rows WHERE reason IS NULL", [now])
        con.execute(f"DELETE FROM {table}_rejects WHERE partition_date = ?", [day])
        con.execute(
            f"""INSERT INTO {table}_rejects BY NAME
            SELECT partition_date, source_file, line_number, raw_text, reason, CAST(? AS TIMESTAMP) AS rejected_at
            FROM _partition_rows WHERE reason IS NOT NULL""",
            [now],
        )
        if index_rows:
            # a touched file keeps its first_seen_at; its new fingerprint spares the next load a re-read
            con.executemany(
                "INSERT INTO raw.landing_files VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path, checksum) "
                "DO UPDATE SET size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns",
                index_rows,
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _summarise(con: duckdb.DuckDBPyConnection, report: PartitionLoad) -> None:
    counts = dict(
        con.execute(
            "SELECT source_file, [count(*) FILTER (reason IS NULL), count(*) FILTER (reason IS NOT NULL)] "
            "FROM _partition_rows GROUP BY ALL"
        ).fetchall()
    )
    report.files = [
        FileLoad(f.source_file, f.checksum, f.lines_read, f.partitions, *counts.get(f.source_file, (0, 0)))
        for f in report.files
    ]
    report.accepted = sum(f.accepted for f in report.files)
    report.rejected = sum(f.rejected for f in report.files)
    reasons = Counter()
    for (reason, n) in con.execute(
        "SELECT split_part(reason, ':', 1), count(*) FROM _partition_rows WHERE reason IS NOT NULL GROUP BY ALL"
    ).fetchall():
        reasons[reason] += n
    report.reject_reasons = dict(reasons.most_common())

"""Turn a landed file of any supported format into numbered lines in DuckDB.

The result is a temp table ``(line_number, raw_text, pre_reason)``: one row per non-blank line (JSON Lines),
record (CSV) or row (Parquet). ``pre_reason`` is set when the line is already known to be bad before parsing
(not UTF-8, a CSV row with the wrong number of fields, an unreadable file).
"""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pyarrow as pa

from trending_assets.lib.landing import LandedFile

LINES_TABLE = "_landing_lines"
BOM = b"\xef\xbb\xbf"  # some Windows tools start UTF-8 files with a byte-order mark


def _literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _register(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, str, str | None]]) -> None:
    table = pa.table({
        "line_number": pa.array([r[0] for r in rows], pa.int64()),
        "raw_text": pa.array([r[1] for r in rows], pa.string()),
        "pre_reason": pa.array([r[2] for r in rows], pa.string()),
    })
    con.register("_lines_arrow", table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {LINES_TABLE} AS SELECT * FROM _lines_arrow")
    con.unregister("_lines_arrow")


def _decoded_lines(data: bytes) -> list[tuple[int, str, str | None]]:
    """Slow path for files with bytes that are not UTF-8: decode line by line and flag the bad ones."""
    rows = []
    for number, raw in enumerate(data.removeprefix(BOM).split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            rows.append((number, raw.decode("utf-8"), None))
        except UnicodeDecodeError as error:
            text = raw.decode("utf-8", errors="backslashreplace")
            rows.append((number, text, f"not valid UTF-8: byte 0x{raw[error.start]:02x} at offset {error.start}"))
    return rows


# DuckDB's trim and rtrim walk every character of the string, which costs more than parsing the line; these
# give the same results but only call them on lines that could be blank (the first character is not visible
# ASCII) or that end with a carriage return.
_NOT_BLANK = "CASE WHEN ord(raw_text) BETWEEN 33 AND 126 THEN true ELSE trim(raw_text) <> '' END"
_WITHOUT_CR = "CASE WHEN suffix(raw_text, chr(13)) THEN rtrim(raw_text, chr(13)) ELSE raw_text END"


def _read_jsonl(con: duckdb.DuckDBPyConnection, landed: LandedFile) -> None:
    try:
        # Fast path: DuckDB splits the file itself (no Python string per line). The split stays in a subquery:
        # unnest(string_split(...)) in one projection re-splits the whole file for every output chunk (quadratic).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {LINES_TABLE} AS
            SELECT line_number, {_WITHOUT_CR} AS raw_text, CAST(NULL AS VARCHAR) AS pre_reason
            FROM (SELECT unnest(lines) AS raw_text, generate_subscripts(lines, 1) AS line_number
                  FROM (SELECT string_split(content, chr(10)) AS lines FROM read_text({_literal(str(landed.path))})))
            WHERE {_NOT_BLANK}"""
        )
    except duckdb.InvalidInputException:
        _register(con, _decoded_lines(landed.path.read_bytes()))


def _read_csv(con: duckdb.DuckDBPyConnection, landed: LandedFile) -> None:
    lines = landed.path.read_bytes().removeprefix(BOM).split(b"\n")
    rows: list[tuple[int, str, str | None]] = []
    header: list[str] | None = None
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            rows.append((number, raw.decode("utf-8", errors="backslashreplace"),
                         f"not valid UTF-8: byte 0x{raw[error.start]:02x} at offset {error.start}"))
            continue
        try:
            values = next(csv.reader(io.StringIO(text), strict=True))
        except csv.Error as error:
            rows.append((number, text, f"malformed CSV: {error}"))
            continue
        if header is None:
            header = [h.strip() for h in values]
            continue
        if len(values) != len(header):
            rows.append((number, text, f"CSV row has {len(values)} fields but the header has {len(header)}"))
            continue
        record = {k: (v if v != "" else None) for k, v in zip(header, values)}
        rows.append((number, json.dumps(record, ensure_ascii=False), None))
    _register(con, rows)


def _read_parquet(con: duckdb.DuckDBPyConnection, landed: LandedFile) -> None:
    try:
        con.execute(
            # file_row_number keeps line numbers stable across reloads (row_number() OVER () is not ordered).
            f"""CREATE OR REPLACE TEMP TABLE {LINES_TABLE} AS
            SELECT line_number, CAST(to_json(row) AS VARCHAR) AS raw_text, CAST(NULL AS VARCHAR) AS pre_reason
            FROM (SELECT file_row_number + 1 AS line_number, * EXCLUDE (file_row_number)
                  FROM read_parquet({_literal(str(landed.path))}, file_row_number = true)) AS rows,
                 LATERAL (SELECT rows.* EXCLUDE (line_number)) AS row"""
        )
    except duckdb.Error as error:
        _register(con, [(0, "", f"unreadable Parquet file: {str(error).splitlines()[0]}")])


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}


def read_lines(con: duckdb.DuckDBPyConnection, landed: LandedFile) -> str:
    """Load ``landed`` into the temp table of numbered lines and return its name."""
    READERS[landed.format](con, landed)
    con.execute(f"UPDATE {LINES_TABLE} SET raw_text = ltrim(raw_text, chr(65279)) "
                "WHERE line_number = 1 AND starts_with(raw_text, chr(65279))")
    return LINES_TABLE


def ends_with_newline(landed: LandedFile) -> bool:
    """False when the last line was cut off (a writer crashed or a copy is still running)."""
    if landed.size_bytes == 0:
        return True
    with open(landed.path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"

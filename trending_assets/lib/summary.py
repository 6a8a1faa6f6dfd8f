"""A short account of what is in the warehouse: rows per table, rejects, the newest windows."""

from __future__ import annotations

import duckdb

SCHEMAS = ("raw", "staging", "marts", "ml")


def table_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """(schema.table, rows) for every table and view in the platform's schemas, sorted by name."""
    names = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        f"WHERE table_schema IN ({', '.join(repr(s) for s in SCHEMAS)}) ORDER BY 1"
    ).fetchall()
    return [(name, con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]) for (name,) in names]


def latest_windows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(kind, window_id, rows, start, end) of the newest dataset of each kind."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ml' AND table_name = 'training_windows'"
    ).fetchall()[0][0]
    if not exists:
        return []
    return con.execute(
        "SELECT kind, window_id, n_rows, start_date, end_date FROM ml.training_windows "
        "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY created_at DESC) = 1 ORDER BY kind"
    ).fetchall()


def render(con: duckdb.DuckDBPyConnection) -> str:
    lines = ["rows per table:"]
    lines += [f"  {name:<34} {rows:>10,}" for name, rows in table_counts(con)]
    windows = latest_windows(con)
    if windows:
        lines.append("datasets (ml.training_windows, newest of each kind):")
        lines += [f"  {kind:<12} {wid}  {rows:>7,} rows  {start or '-'} .. {end}" for kind, wid, rows, start, end in windows]
    return "\n".join(lines)

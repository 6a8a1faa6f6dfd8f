"""A short account of what is in the warehouse: rows per table, rejects, the newest windows."""

from __future__ import annotations

import duckdb

from trending_assets.lib.warehouse import table_exists

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
    if not table_exists(con, "ml", "training_windows"):
        return []
    return con.execute(
        "SELECT kind, window_id, n_rows, start_date, end_date FROM ml.training_windows "
        "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY created_at DESC) = 1 ORDER BY kind"
    ).fetchall()


def models(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(version_id, stage, training mode, static-test macro F1, aliases) of every registered model."""
    if not table_exists(con, "ml", "model_versions"):
        return []
    return con.execute(
        """SELECT v.version_id, v.stage, v.training_mode,
                  TRY_CAST(json_extract(v.metrics, '$.static_test_macro_f1') AS DOUBLE),
                  coalesce(string_agg(a.alias, ', ' ORDER BY a.alias), '')
           FROM ml.model_versions v LEFT JOIN ml.model_aliases a ON a.version_id = v.version_id
           GROUP BY v.version_id, v.stage, v.training_mode, v.metrics, v.family, v.version_number
           ORDER BY v.family, v.version_number"""
    ).fetchall()


def alias_moves(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(alias, seq, from, to, moved_at, actor, reason) of every alias move, oldest first."""
    if not table_exists(con, "ml", "alias_history"):
        return []
    return con.execute("SELECT alias, seq, from_version, to_version, moved_at, actor, reason "
                       "FROM ml.alias_history ORDER BY id").fetchall()


def render(con: duckdb.DuckDBPyConnection) -> str:
    lines = ["rows per table:"]
    lines += [f"  {name:<34} {rows:>10,}" for name, rows in table_counts(con)]
    windows = latest_windows(con)
    if windows:
        lines.append("datasets (ml.training_windows, newest of each kind):")
        lines += [f"  {kind:<12} {wid}  {rows:>7,} rows  {start or '-'} .. {end}" for kind, wid, rows, start, end in windows]
    registered = models(con)
    if registered:
        lines.append("models (ml.model_versions; macro F1 on the static test set):")
        lines += [f"  {vid:<16} {stage:<10} {mode:<9} macro F1 {'-' if f1 is None else f'{f1:.3f}':>5}  {aliases}"
                  for vid, stage, mode, f1, aliases in registered]
    moves = alias_moves(con)
    if moves:
        lines.append("alias moves (ml.alias_history):")
        lines += [f"  {alias} #{seq}: {src or '-'} -> {dst or '-'} at {at:%Y-%m-%d %H:%M} by {actor}: {reason[:90]}"
                  for alias, seq, src, dst, at, actor, reason in moves]
    return "\n".join(lines)

"""A short account of what is in the warehouse: rows per table, rejects, the newest windows."""

from __future__ import annotations

import duckdb

from trending_assets.lib.warehouse import table_exists

SCHEMAS = ("raw", "staging", "marts", "ml", "monitoring")


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


def retraining(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(id, requested_at, kind, decision, outcome, reason, decision_reason) of every retrain request, oldest first."""
    if not table_exists(con, "ml", "retraining_log"):
        return []
    return con.execute("SELECT id, requested_at, kind, decision, outcome, reason, decision_reason "
                       "FROM ml.retraining_log ORDER BY id").fetchall()


def drift_history(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(created_at, champion, current_start, current_end, drifted signals) per drift report, oldest first."""
    if not table_exists(con, "monitoring", "drift_reports"):
        return []
    return con.execute(
        """SELECT min(created_at), any_value(model_version), any_value(current_start), any_value(current_end),
                  coalesce(list_sort(list_distinct(list(signal) FILTER (WHERE drifted AND
                      (signal <> 'data' OR feature = 'dataset')))), [])
           FROM monitoring.drift_reports GROUP BY report_id ORDER BY 1"""
    ).fetchall()


def champion_performance(con: duckdb.DuckDBPyConnection, metrics=("online_micro_f1", "estimated_micro_f1")) -> list[tuple]:
    """(version, day, metric, value, n) of registered versions' F1 rows, newest days last."""
    if not table_exists(con, "monitoring", "model_performance"):
        return []
    names = ", ".join(f"'{m}'" for m in metrics)
    return con.execute(f"SELECT model_version, day, metric, value, n FROM monitoring.model_performance "
                       f"WHERE metric IN ({names}) ORDER BY model_version, day, metric").fetchall()


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
    reports = drift_history(con)
    if reports:
        lines.append("drift reports (monitoring.drift_reports; reference: the champion's window):")
        lines += [f"  {at:%H:%M:%S} {champion or '-':<14} current {start or '-'} .. {end or '-'}: "
                  f"{'drift in ' + ', '.join(signals) if signals else 'no drift'}"
                  for at, champion, start, end, signals in reports]
    requests = retraining(con)
    if requests:
        lines.append("retraining log (ml.retraining_log; every request, run or not):")
        for entry, at, kind, decision, outcome, reason, why in requests:
            lines.append(f"  #{entry:<3} {at:%H:%M:%S} {kind:<11} {decision:<4} {outcome or '-':<9} {reason[:110]}")
            if decision != "run" or kind == "manual":
                lines.append(f"{'':<36}{why[:110]}")
    return "\n".join(lines)

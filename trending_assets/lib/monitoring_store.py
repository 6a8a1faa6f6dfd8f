"""The ``monitoring`` schema: drift reports and model performance, as long tables analysts can pivot.

- ``monitoring.drift_reports``: one row per report, signal, feature and metric (``drift.to_long``'s columns plus
  which report, champion, reference window and current days it was). Reports are appended, never rewritten, so
  the history of a feature's PSI is one query away.
- ``monitoring.model_performance``: one row per (model_version, day, metric), ``performance.PERFORMANCE_COLUMNS``
  plus when it was computed. Recomputing a day replaces its rows (late feedback changes a day's numbers).
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl

from trending_assets.lib.drift import LONG_SCHEMA
from trending_assets.lib.performance import PERFORMANCE_SCHEMA
from trending_assets.lib.warehouse import table_exists

DDL = (
    "CREATE SCHEMA IF NOT EXISTS monitoring",
    """CREATE TABLE IF NOT EXISTS monitoring.drift_reports (
        report_id VARCHAR NOT NULL,          -- one drift report (one asset materialization)
        created_at TIMESTAMP NOT NULL,       -- UTC
        model_version VARCHAR,               -- the champion whose training window is the reference
        reference_window_id VARCHAR,         -- ml.training_windows.window_id of that window
        current_start DATE,                  -- the current data: movies first seen on these days
        current_end DATE,
        signal VARCHAR NOT NULL,             -- data | vocabulary | embedding | prediction | label
        feature VARCHAR NOT NULL,            -- a column, a text, 'genres' or 'dataset' (the share rule's rows)
        kind VARCHAR NOT NULL,               -- numeric | categorical | text | embedding | dataset
        test VARCHAR NOT NULL,               -- ks | wasserstein | chi_squared | jensen_shannon | ...
        metric VARCHAR NOT NULL,             -- statistic | p_value | psi | share_drifted | ...
        value DOUBLE,                        -- NULL when not computed (insufficient data)
        threshold DOUBLE,
        drifted BOOLEAN,                     -- NULL when not judged
        status VARCHAR NOT NULL,             -- ok | insufficient data
        reason VARCHAR,
        n_reference BIGINT,
        n_current BIGINT,
        n_missing_reference BIGINT,
        n_missing_current BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS monitoring.model_performance (
        model_version VARCHAR NOT NULL,      -- a registry version, or 'unattributed' for unserved feedback
        day DATE NOT NULL,
        metric VARCHAR NOT NULL,             -- online_micro_f1 | thumbs_down_rate | estimated_macro_f1 | ...
        value DOUBLE NOT NULL,
        n BIGINT NOT NULL,                   -- corrections, votes, impressions or movies behind the value
        computed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model_version, day, metric)
    )""",
)
REPORT_COLUMNS = ("report_id", "created_at", "model_version", "reference_window_id", "current_start",
                  "current_end", "signal")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def record_drift(
    con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, *, report_id: str, created_at: datetime,
    model_version: str | None, reference_window_id: str | None, current_start: date | None,
    current_end: date | None,
) -> int:
    """Append a report's long rows (``drift.LONG_SCHEMA`` plus ``signal``); return how many were written."""
    ensure_schema(con)
    missing = [c for c in (*LONG_SCHEMA, "signal") if c not in rows.columns]
    if missing:
        raise ValueError(f"drift rows lack column(s) {', '.join(missing)}; build them with drift_report.long_rows")
    frame = rows.with_columns(
        pl.lit(report_id).alias("report_id"), pl.lit(created_at).alias("created_at"),
        pl.lit(model_version, pl.String).alias("model_version"),
        pl.lit(reference_window_id, pl.String).alias("reference_window_id"),
        pl.lit(current_start, pl.Date).alias("current_start"), pl.lit(current_end, pl.Date).alias("current_end"),
    ).select(*REPORT_COLUMNS, *[c for c in LONG_SCHEMA if c != "report_id"])
    con.register("drift_rows", frame)
    try:
        con.execute(f"INSERT INTO monitoring.drift_reports ({', '.join(frame.columns)}) SELECT * FROM drift_rows")
    finally:
        con.unregister("drift_rows")
    return frame.height


def record_performance(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, computed_at: datetime) -> int:
    """Upsert (model_version, day, metric) rows: a recomputed day replaces its old numbers. Returns rows written."""
    ensure_schema(con)
    frame = rows.select(*PERFORMANCE_SCHEMA).cast(PERFORMANCE_SCHEMA).with_columns(
        pl.lit(computed_at).alias("computed_at"))
    if frame.is_empty():
        return 0
    con.register("performance_rows", frame)
    try:
        con.execute("""INSERT OR REPLACE INTO monitoring.model_performance
                       SELECT model_version, day, metric, value, n, computed_at FROM performance_rows""")
    finally:
        con.unregister("performance_rows")
    return frame.height


def performance(con: duckdb.DuckDBPyConnection, since: date | None = None) -> pl.DataFrame:
    """Rows of ``monitoring.model_performance`` (from ``since`` on), ordered by version, day and metric."""
    if not table_exists(con, "monitoring", "model_performance"):
        return pl.DataFrame(schema=PERFORMANCE_SCHEMA)
    where, params = ("WHERE day >= ?", [since]) if since else ("", [])
    return con.sql(f"SELECT model_version, day, metric, value, n FROM monitoring.model_performance {where} "
                   "ORDER BY model_version, day, metric", params=params).pl().cast(PERFORMANCE_SCHEMA)


def latest_drift(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The newest drift report's rows (empty when there is none)."""
    if not table_exists(con, "monitoring", "drift_reports"):
        return pl.DataFrame()
    return con.sql("""SELECT * FROM monitoring.drift_reports WHERE report_id = (
                          SELECT report_id FROM monitoring.drift_reports ORDER BY created_at DESC LIMIT 1)
                      ORDER BY signal, feature, metric""").pl()

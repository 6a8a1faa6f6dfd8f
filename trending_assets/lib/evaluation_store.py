"""``ml.evaluations`` and ``ml.model_comparisons``: every model version's scores per dataset and slice, and every
challenger-versus-reference comparison, keyed by the content hash of the movies they were measured on.

Writes replace what the same version (or pair) got on the same rows before, so re-running an evaluation is
idempotent. Readers return the latest window of each dataset: once the rolling test set moves on, a version's
older scores stay in the table for history but no longer answer "how good is it now".
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from trending_assets.lib.evaluation import EVALUATION_SCHEMA, Comparison
from trending_assets.lib.metrics import EVALUATION_COLUMNS
from trending_assets.lib.registry_schema import as_utc, run_in_transaction
from trending_assets.lib.warehouse import table_exists

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    """CREATE TABLE IF NOT EXISTS ml.evaluations (
        model_version VARCHAR NOT NULL,     -- ml.model_versions.version_id, or baseline:prevalence
        dataset VARCHAR NOT NULL,           -- what it was scored on: static_test, backtest, ...
        window_id VARCHAR NOT NULL,         -- content hash of the evaluated rows (ml.training_windows.window_id)
        slice VARCHAR NOT NULL,             -- all | release_decade | source | overview_length | genre
        slice_value VARCHAR NOT NULL,       -- "all", "1990s", a genre, ...
        metric VARCHAR NOT NULL,            -- micro_f1, macro_f1, samples_f1, exact_match; per genre: precision,
                                            -- recall, f1, support
        value DOUBLE NOT NULL,
        n BIGINT NOT NULL,                  -- movies in the slice (every evaluated movie for genre rows)
        evaluated_at TIMESTAMP NOT NULL,    -- UTC
        PRIMARY KEY (model_version, dataset, window_id, slice, slice_value, metric)
    )""",
    """CREATE TABLE IF NOT EXISTS ml.model_comparisons (
        challenger VARCHAR NOT NULL,        -- the version that wants promotion
        reference VARCHAR NOT NULL,         -- the champion it is measured against, or baseline:prevalence
        dataset VARCHAR NOT NULL,
        window_id VARCHAR NOT NULL,         -- content hash of the rows both were scored on
        metric VARCHAR NOT NULL,            -- macro_f1 | micro_f1
        diff DOUBLE NOT NULL,               -- metric(challenger) - metric(reference); positive is better
        ci_low DOUBLE NOT NULL,             -- paired-bootstrap percentile interval of diff
        ci_high DOUBLE NOT NULL,
        p_value DOUBLE NOT NULL,            -- two-sided; resolution 2 / n_boot
        n_boot INTEGER NOT NULL,
        confidence DOUBLE NOT NULL,         -- of the interval, e.g. 0.95
        n BIGINT NOT NULL,                  -- movies compared on
        compared_at TIMESTAMP NOT NULL,     -- UTC
        PRIMARY KEY (challenger, reference, dataset, window_id, metric)
    )""",
)

STORED_EVALUATION_SCHEMA = {**EVALUATION_SCHEMA, "window_id": pl.String, "evaluated_at": pl.Datetime("us")}
_COMPARISON_COLUMNS = (
    "challenger, reference, dataset, window_id, metric, diff, ci_low, ci_high, p_value, n_boot, confidence, n"
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``ml.evaluations`` and ``ml.model_comparisons`` if they do not exist (every write calls this)."""
    for statement in DDL:
        con.execute(statement)


def write_evaluation(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, window_id: str, evaluated_at: datetime) -> int:
    """Store ``evaluate`` rows measured on the rows hashed as ``window_id``; returns the number of rows written.

    Every (model_version, dataset) in ``rows`` first loses what it had on this window, in the same transaction,
    so a re-evaluation replaces the old scores instead of mixing with them.
    """
    missing = [c for c in EVALUATION_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack column(s) {', '.join(missing)}; pass the frame evaluation.evaluate returns")
    stored = rows.select(EVALUATION_COLUMNS).with_columns(
        pl.lit(window_id).alias("window_id"), pl.lit(as_utc(evaluated_at)).alias("evaluated_at")
    )
    ensure_schema(con)

    def replace() -> int:
        con.register("_evaluation_rows", stored)
        try:
            con.execute(
                "DELETE FROM ml.evaluations WHERE window_id = ? AND (model_version, dataset) IN "
                "(SELECT DISTINCT model_version, dataset FROM _evaluation_rows)",
                [window_id],
            )
            con.execute(
                f"INSERT INTO ml.evaluations ({', '.join(STORED_EVALUATION_SCHEMA)}) "
                f"SELECT {', '.join(STORED_EVALUATION_SCHEMA)} FROM _evaluation_rows"
            )
        finally:
            con.unregister("_evaluation_rows")
        return stored.height

    return run_in_transaction(con, replace, f"writing the evaluation on window {window_id}")


def write_comparisons(con: duckdb.DuckDBPyConnection, comparisons: list[Comparison], compared_at: datetime) -> int:
    """Store comparisons, each replacing an earlier one of the same key; returns the number written."""
    ensure_schema(con)
    at = as_utc(compared_at)

    def replace() -> int:
        for c in comparisons:
            key = [c.challenger, c.reference, c.dataset, c.window_id, c.metric]
            con.execute(
                "DELETE FROM ml.model_comparisons "
                "WHERE challenger = ? AND reference = ? AND dataset = ? AND window_id = ? AND metric = ?",
                key,
            )
            con.execute(
                f"INSERT INTO ml.model_comparisons ({_COMPARISON_COLUMNS}, compared_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*key, c.diff, c.low, c.high, c.p_value, c.n_boot, c.confidence, c.n, at],
            )
        return len(comparisons)

    return run_in_transaction(con, replace, "writing model comparisons")


def read_evaluation(con: duckdb.DuckDBPyConnection, model_version: str, dataset: str | None = None) -> pl.DataFrame:
    """The version's rows on its most recently evaluated window of each dataset (or of ``dataset`` only).

    The columns are ``EVALUATION_COLUMNS`` plus window_id and evaluated_at; empty when nothing was stored.
    """
    if not table_exists(con, "ml", "evaluations"):
        return pl.DataFrame(schema=STORED_EVALUATION_SCHEMA)
    return con.sql(
        f"""
        WITH latest AS (
            SELECT dataset, window_id
            FROM ml.evaluations
            WHERE model_version = $version AND ($dataset IS NULL OR dataset = $dataset)
            GROUP BY dataset, window_id
            QUALIFY row_number() OVER (PARTITION BY dataset ORDER BY max(evaluated_at) DESC, window_id) = 1
        )
        SELECT {', '.join(STORED_EVALUATION_SCHEMA)}
        FROM ml.evaluations JOIN latest USING (dataset, window_id)
        WHERE model_version = $version
        ORDER BY dataset, slice, slice_value, metric
        """,
        params={"version": model_version, "dataset": dataset},
    ).pl().cast(STORED_EVALUATION_SCHEMA)


def read_comparisons(con: duckdb.DuckDBPyConnection, challenger: str) -> list[Comparison]:
    """The challenger's latest comparison per (reference, dataset, metric); empty when none was stored.

    Keeping each reference apart means a comparison with the baseline does not hide one with the champion.
    """
    if not table_exists(con, "ml", "model_comparisons"):
        return []
    rows = con.execute(
        f"""
        SELECT {_COMPARISON_COLUMNS}
        FROM ml.model_comparisons
        WHERE challenger = ?
        QUALIFY row_number() OVER (
            PARTITION BY reference, dataset, metric ORDER BY compared_at DESC, window_id
        ) = 1
        ORDER BY reference, dataset, metric
        """,
        [challenger],
    ).fetchall()
    return [Comparison(*row) for row in rows]



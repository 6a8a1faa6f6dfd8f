"""The ``experiments`` schema: each rollout's state and history, and every analysis of its traffic.

- ``experiments.rollouts``: one row per experiment (a challenger against the champion): phase, canary percent,
  the data watermark where the current step began, the power analysis, the decision.
- ``experiments.phase_history``: append-only, every phase or percent change with actor, reason and evidence.
- ``experiments.results``: one row per analysis and metric (the fixed-horizon test, the sequential one, Holm).
- ``experiments.srm`` and ``experiments.shadow_reports``: the sample ratio checks and shadow comparisons.

The traffic itself is read from ``marts.fct_feedback_events`` (``load_events`` and friends): the API's log flows
through the same landing contract and dbt models as every other feedback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from trending_assets.lib.ingest import utc_now
from trending_assets.lib.registry_schema import run_in_transaction
from trending_assets.lib.warehouse import table_exists

DDL = (
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.rollouts (
        experiment_id VARCHAR PRIMARY KEY,     -- rollout-<challenger>
        champion_version VARCHAR NOT NULL,     -- the control when the experiment started
        challenger_version VARCHAR NOT NULL,   -- the treatment
        salt VARCHAR NOT NULL,                 -- assignment hash salt: sticky users across the ramp
        phase VARCHAR NOT NULL,                -- shadow | canary | ab | awaiting_approval | promoted | rejected |
                                               -- rolled_back | invalid | production-validated
        percent DOUBLE NOT NULL,               -- the challenger's share of users now (0 outside canary and ab)
        step_started_at TIMESTAMP NOT NULL,    -- the data watermark: this step analyses traffic after it
        approval VARCHAR NOT NULL,             -- auto | manual
        planned_users_per_arm BIGINT,          -- the power analysis at the start of the A/B step
        expected_days DOUBLE,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        decided_at TIMESTAMP,
        decision_reason VARCHAR
    )""",
    "CREATE SEQUENCE IF NOT EXISTS experiments.phase_history_id",
    """CREATE TABLE IF NOT EXISTS experiments.phase_history (
        id BIGINT PRIMARY KEY DEFAULT nextval('experiments.phase_history_id'),
        experiment_id VARCHAR NOT NULL,
        moved_at TIMESTAMP NOT NULL,
        from_phase VARCHAR, to_phase VARCHAR NOT NULL,
        from_percent DOUBLE, to_percent DOUBLE NOT NULL,
        actor VARCHAR NOT NULL,                -- sensor:rollout_sensor | human:<name> | cli
        reason VARCHAR NOT NULL,
        evidence JSON
    )""",
    """CREATE TABLE IF NOT EXISTS experiments.results (
        experiment_id VARCHAR NOT NULL, analysed_at TIMESTAMP NOT NULL, phase VARCHAR NOT NULL,
        percent DOUBLE NOT NULL, days INTEGER NOT NULL, metric VARCHAR NOT NULL, role VARCHAR NOT NULL,
        method VARCHAR NOT NULL, control_n BIGINT, treatment_n BIGINT, control_mean DOUBLE, treatment_mean DOUBLE,
        diff DOUBLE, ci_low DOUBLE, ci_high DOUBLE, p_value DOUBLE, p_adjusted DOUBLE, variance_reduction DOUBLE,
        sequential_p DOUBLE, sequential_ci_low DOUBLE, sequential_ci_high DOUBLE, improved BOOLEAN, harmed BOOLEAN
    )""",
    """CREATE TABLE IF NOT EXISTS experiments.srm (
        experiment_id VARCHAR NOT NULL, analysed_at TIMESTAMP NOT NULL, phase VARCHAR NOT NULL,
        control_users BIGINT, treatment_users BIGINT, expected_share DOUBLE, chi2 DOUBLE, p_value DOUBLE,
        ok BOOLEAN
    )""",
    """CREATE TABLE IF NOT EXISTS experiments.shadow_reports (
        experiment_id VARCHAR NOT NULL, analysed_at TIMESTAMP NOT NULL, shadow_version VARCHAR NOT NULL,
        requests BIGINT, error_rate DOUBLE, agreement DOUBLE, per_genre_agreement JSON, movies_compared BIGINT,
        latency_p50_ms DOUBLE, latency_p99_ms DOUBLE
    )""",
)
ACTIVE = ("shadow", "canary", "ab")
COLUMNS = ("experiment_id", "champion_version", "challenger_version", "salt", "phase", "percent",
           "step_started_at", "approval", "planned_users_per_arm", "expected_days", "created_at", "updated_at",
           "decided_at", "decision_reason")


@dataclass(frozen=True)
class Rollout:
    experiment_id: str
    champion_version: str
    challenger_version: str
    salt: str
    phase: str
    percent: float
    step_started_at: datetime
    approval: str
    planned_users_per_arm: int | None
    expected_days: float | None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    decision_reason: str | None

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def get(con: duckdb.DuckDBPyConnection, experiment_id: str) -> Rollout | None:
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM experiments.rollouts WHERE experiment_id = ?",
                       [experiment_id]).fetchall()
    return Rollout(*rows[0]) if rows else None


def list_rollouts(con: duckdb.DuckDBPyConnection, active_only: bool = False) -> list[Rollout]:
    if not table_exists(con, "experiments", "rollouts"):
        return []
    where = f"WHERE phase IN ({', '.join(repr(p) for p in ACTIVE)})" if active_only else ""
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM experiments.rollouts {where} ORDER BY created_at").fetchall()
    return [Rollout(*row) for row in rows]


def create(con: duckdb.DuckDBPyConnection, champion: str, challenger: str, approval: str, actor: str,
           reason: str, watermark: datetime) -> Rollout:
    """Start a rollout in the shadow phase (``watermark``: where its traffic begins)."""
    experiment_id = f"rollout-{challenger}"
    now = utc_now()

    def insert() -> None:
        con.execute(f"INSERT INTO experiments.rollouts ({', '.join(COLUMNS)}) VALUES "
                    "(?, ?, ?, ?, 'shadow', 0, ?, ?, NULL, NULL, ?, ?, NULL, NULL)",
                    [experiment_id, champion, challenger, f"{experiment_id}-salt", watermark, approval, now, now])
        _history(con, experiment_id, None, "shadow", None, 0.0, actor, reason, {})

    run_in_transaction(con, insert, f"starting {experiment_id}")
    return get(con, experiment_id)


def move(con: duckdb.DuckDBPyConnection, rollout: Rollout, phase: str, percent: float, actor: str, reason: str,
         evidence: dict | None = None, watermark: datetime | None = None, plan: dict | None = None) -> Rollout:
    """Change the phase and/or percent (compare-and-set on the current phase and percent), with a history row.
    ``plan``: the power analysis (planned_users_per_arm, expected_days) to record."""
    now = utc_now()
    decided = phase not in ACTIVE

    def update() -> None:
        changed = con.execute(
            "UPDATE experiments.rollouts SET phase = ?, percent = ?, step_started_at = coalesce(?, step_started_at), "
            "planned_users_per_arm = coalesce(?, planned_users_per_arm), expected_days = coalesce(?, expected_days), "
            "updated_at = ?, decided_at = CASE WHEN ? THEN ? ELSE decided_at END, "
            "decision_reason = CASE WHEN ? THEN ? ELSE decision_reason END "
            "WHERE experiment_id = ? AND phase = ? AND percent = ? RETURNING experiment_id",
            [phase, percent, watermark, (plan or {}).get("planned_users_per_arm"), (plan or {}).get("expected_days"),
             now, decided, now, decided, reason, rollout.experiment_id, rollout.phase, rollout.percent]).fetchall()
        if not changed:
            raise RuntimeError(f"{rollout.experiment_id} moved since it was read (expected {rollout.phase} at "
                               f"{rollout.percent:g}%); re-read it and decide again")
        _history(con, rollout.experiment_id, rollout.phase, phase, rollout.percent, percent, actor, reason,
                 evidence or {})

    run_in_transaction(con, update, f"moving {rollout.experiment_id} to {phase}")
    return get(con, rollout.experiment_id)


def _history(con, experiment_id, from_phase, to_phase, from_percent, to_percent, actor, reason, evidence) -> None:
    con.execute("INSERT INTO experiments.phase_history (experiment_id, moved_at, from_phase, to_phase, from_percent, "
                "to_percent, actor, reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [experiment_id, utc_now(), from_phase, to_phase, from_percent, to_percent, actor, reason,
                 json.dumps(evidence, default=str)])


def history(con: duckdb.DuckDBPyConnection, experiment_id: str | None = None) -> pl.DataFrame:
    where, params = ("WHERE experiment_id = ?", [experiment_id]) if experiment_id else ("", [])
    return con.sql(f"SELECT * FROM experiments.phase_history {where} ORDER BY id", params=params).pl()


def save_analysis(con: duckdb.DuckDBPyConnection, rollout: Rollout, rows: list[dict], srm: dict,
                  shadows: list[dict]) -> datetime:
    """Append one analysis: metric rows, the SRM check and shadow reports; returns its timestamp."""
    now = utc_now()

    def insert() -> None:
        if rows:
            frame = pl.DataFrame([{k: _plain(v) for k, v in row.items()} for row in rows], infer_schema_length=None)
            frame = frame.with_columns(analysed_at=pl.lit(now), phase=pl.lit(rollout.phase),
                                       percent=pl.lit(float(rollout.percent)))
            con.register("analysis_rows", frame.to_arrow())
            con.execute("INSERT INTO experiments.results BY NAME SELECT * FROM analysis_rows")
            con.unregister("analysis_rows")
        if srm:
            con.execute("INSERT INTO experiments.srm VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [rollout.experiment_id, now, rollout.phase, srm["observed"][0], srm["observed"][1],
                         srm["expected_shares"][1], srm["chi2"], srm["p_value"], srm["ok"]])
        for s in shadows:
            con.execute("INSERT INTO experiments.shadow_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [rollout.experiment_id, now, s["shadow_version"], s["requests"], s["error_rate"],
                         s["agreement"], json.dumps(s["per_genre_agreement"]), s["movies_compared"],
                         s["latency_p50_ms"], s["latency_p99_ms"]])

    run_in_transaction(con, insert, f"saving the analysis of {rollout.experiment_id}")
    return now


def _plain(value):
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value


# -- reading the traffic ---------------------------------------------------------------------------------------

def load_events(con: duckdb.DuckDBPyConnection, experiment_id: str, since: datetime) -> pl.DataFrame:
    """The experiment's events after ``since``: exposures (with status), impressions (with shown genres),
    clicks, views, thumbs down and corrections, one row each."""
    return con.sql(
        """SELECT user_id, variant, event_type, movie_id, value, occurred_at::DATE AS day,
                  CASE WHEN event_type = 'impression' THEN CAST(json_extract(payload, '$.genres') AS VARCHAR[])
                  END AS shown,
                  CASE WHEN event_type = 'exposure' THEN json_extract_string(payload, '$.status') END AS status
           FROM marts.fct_feedback_events
           WHERE experiment_id = ? AND occurred_at > ?
             AND event_type IN ('exposure', 'impression', 'click', 'view', 'thumbs_down', 'genre_correction')""",
        params=[experiment_id, since]).pl()


def load_latencies(con: duckdb.DuckDBPyConnection, experiment_id: str, since: datetime) -> pl.DataFrame:
    return con.sql(
        """SELECT variant, CAST(json_extract(payload, '$.latency_ms') AS DOUBLE) AS latency_ms
           FROM marts.fct_feedback_events
           WHERE experiment_id = ? AND occurred_at > ? AND event_type = 'exposure'
             AND json_extract_string(payload, '$.status') = 'ok'""", params=[experiment_id, since]).pl()


def load_corrections(con: duckdb.DuckDBPyConnection, experiment_id: str, since: datetime) -> pl.DataFrame:
    """Each correction with the genres the user was shown for that movie (their latest impression of it)."""
    return con.sql(
        """WITH shown AS (
               SELECT user_id, movie_id, arg_max(CAST(json_extract(payload, '$.genres') AS VARCHAR[]), occurred_at)
                      AS shown
               FROM marts.fct_feedback_events
               WHERE experiment_id = ? AND occurred_at > ? AND event_type = 'impression'
               GROUP BY ALL)
           SELECT c.variant, s.shown, c.corrected_genres AS corrected
           FROM marts.fct_feedback_events c JOIN shown s USING (user_id, movie_id)
           WHERE c.experiment_id = ? AND c.occurred_at > ? AND c.event_type = 'genre_correction'""",
        params=[experiment_id, since, experiment_id, since]).pl()


def load_labels(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT movie_id, genres FROM marts.dim_movies WHERE is_labeled").pl()


def load_pre_period(con: duckdb.DuckDBPyConnection, before: datetime, days: int = 14) -> pl.DataFrame:
    """Each user's organic click rate (clicks per impression outside any experiment) in the ``days`` before."""
    return con.sql(
        """SELECT user_id, count(*) FILTER (event_type = 'click') / greatest(count(*) FILTER
                  (event_type = 'impression'), 1) AS pre_click_rate
           FROM marts.fct_feedback_events
           WHERE experiment_id IS NULL AND occurred_at <= ? AND occurred_at > ? - to_days(?)
             AND event_type IN ('impression', 'click')
           GROUP BY user_id""", params=[before, before, days]).pl()


def load_shadow_events(con: duckdb.DuckDBPyConnection, version: str, since: datetime) -> pl.DataFrame:
    return con.sql(
        """SELECT json_extract_string(payload, '$.shadow_version') AS shadow_version,
                  json_extract_string(payload, '$.status') AS status,
                  CAST(json_extract(payload, '$.latency_ms') AS DOUBLE) AS latency_ms,
                  CAST(json_extract(payload, '$.genres') AS VARCHAR[][]) AS genres,
                  CAST(json_extract(payload, '$.served_genres') AS VARCHAR[][]) AS served_genres
           FROM marts.fct_feedback_events
           WHERE event_type = 'shadow_prediction' AND model_version = ? AND occurred_at > ?""",
        params=[version, since]).pl()


def watermark(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest event time in the marts: where the next step's traffic starts."""
    if not table_exists(con, "marts", "fct_feedback_events"):
        return None
    return con.execute("SELECT max(occurred_at) FROM marts.fct_feedback_events").fetchall()[0][0]

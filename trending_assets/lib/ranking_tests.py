"""Interleaving tests of ``/trending`` rankers: recorded, served through the plan, analysed from the event log.

A test is a plan ``Experiment`` on surface ``ranking`` with design ``team_draft`` (or ``balanced``) and two variants
naming rankers (A, then B). The router logs one ``exposure`` per request for it (variant ``interleaved``, the
request id in its payload) and the team of every listed position in the impression's payload (balanced: also the
movie's rank in A and in B); clients (and the simulator) send the request id with each click. Team draft credits a
click to the team whose ranker placed the clicked movie, balanced by its top-k rule (``user_credits``); a user
prefers the ranker credited with more of their clicks over the whole test; the verdict is a sign test over users
with a preference (``interleaving.verdict_from_counts``), and the power analysis plans how many users a gap of the
pilot's size needs (``interleaving.required_users``). The analysis runs after every feedback update, so the test
is decided on the always-valid p-value of a Beta-mixture SPRT (``sequential.sign_test_p_value``, running minimum
over looks), not on the sign test's p-value, which is valid for one look only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from trending_assets.lib import deployment_plan, interleaving, sequential
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.deployment_plan import INTERLEAVED
from trending_assets.lib.rankers import RANKERS
from trending_assets.lib.warehouse import table_exists

DDL = (
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.ranking_tests (
        experiment_id VARCHAR PRIMARY KEY,
        design VARCHAR NOT NULL,               -- team_draft | balanced
        salt VARCHAR NOT NULL,
        ranker_a VARCHAR NOT NULL,             -- the incumbent
        ranker_b VARCHAR NOT NULL,             -- the challenger
        allocation_percent DOUBLE NOT NULL,
        min_users BIGINT NOT NULL,             -- no verdict before this many users with a preference
        status VARCHAR NOT NULL,               -- running | decided | stopped
        started_at TIMESTAMP NOT NULL,         -- data watermark: traffic after it counts
        created_at TIMESTAMP NOT NULL,
        decided_at TIMESTAMP,
        verdict VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS experiments.interleaving_results (
        experiment_id VARCHAR NOT NULL,
        analysed_at TIMESTAMP NOT NULL,
        ranker_a VARCHAR NOT NULL,
        ranker_b VARCHAR NOT NULL,
        users BIGINT NOT NULL,                 -- exposed users
        wins_a BIGINT NOT NULL,                -- users whose clicks credit A more
        wins_b BIGINT NOT NULL,
        ties BIGINT NOT NULL,                  -- users with clicks credited equally
        preference_b DOUBLE,                   -- B's share of users with a preference
        ci_low DOUBLE,                         -- of preference_b
        ci_high DOUBLE,
        p_value DOUBLE,                        -- the sign test at this look (valid for one look only)
        sequential_p DOUBLE,                   -- always-valid: the running minimum over looks; decides the test
        required_users BIGINT,                 -- exposed users for 80% power at the observed gap
        winner VARCHAR                         -- the preferred ranker once decided, else NULL
    )""",
)


@dataclass(frozen=True)
class RankingTest:
    experiment_id: str
    design: str
    salt: str
    ranker_a: str
    ranker_b: str
    allocation_percent: float
    min_users: int
    status: str
    started_at: datetime

    def plan_experiment(self) -> deployment_plan.Experiment:
        return deployment_plan.Experiment(self.experiment_id, "ranking", self.salt, self.allocation_percent, (
            deployment_plan.Variant("A", 0.5, ranker=self.ranker_a),
            deployment_plan.Variant("B", 0.5, ranker=self.ranker_b)), design=self.design)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def start(con: duckdb.DuckDBPyConnection, experiment_id: str, ranker_a: str, ranker_b: str, started_at: datetime,
          allocation_percent: float = 100.0, min_users: int = 100, design: str = "team_draft") -> RankingTest:
    """Record a running interleaving test (``design`` team_draft or balanced) of ``ranker_b`` (challenger) against
    ``ranker_a`` (incumbent)."""
    ensure_schema(con)
    if design not in INTERLEAVED:
        raise ValueError(f"--design {design!r}: use one of {', '.join(INTERLEAVED)}")
    for name in (ranker_a, ranker_b):
        if name not in RANKERS:
            raise ValueError(f"{name!r} is not a ranker; use one of {', '.join(RANKERS)}")
    if ranker_a == ranker_b:
        raise ValueError(f"an interleaving test needs two different rankers; got {ranker_a} twice")
    if experiment_id in {t.experiment_id for t in running(con)}:
        raise ValueError(f"ranking test {experiment_id!r} is already running; stop it first or pick another id")
    con.execute("INSERT INTO experiments.ranking_tests VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL, NULL)",
                [experiment_id, design, f"{experiment_id}-salt", ranker_a, ranker_b, allocation_percent, min_users,
                 started_at, utc_now()])
    return running(con)[-1]


def running(con: duckdb.DuckDBPyConnection) -> list[RankingTest]:
    if not table_exists(con, "experiments", "ranking_tests"):
        return []
    rows = con.execute("SELECT experiment_id, design, salt, ranker_a, ranker_b, allocation_percent, min_users, "
                       "status, started_at FROM experiments.ranking_tests WHERE status = 'running' "
                       "ORDER BY created_at").fetchall()
    return [RankingTest(*row) for row in rows]


def finish(con: duckdb.DuckDBPyConnection, experiment_id: str, status: str, verdict: str) -> None:
    con.execute("UPDATE experiments.ranking_tests SET status = ?, verdict = ?, decided_at = ? "
                "WHERE experiment_id = ?", [status, verdict, utc_now(), experiment_id])


def user_credits(con: duckdb.DuckDBPyConnection, test: RankingTest) -> pl.DataFrame:
    """Per exposed user: clicks credited to A and to B over the test (0 and 0 for a user who never clicked).

    Team draft credits a click to the team of its position. Balanced interleaving (``interleaving.credit``) takes the
    deepest clicked position's movie, k = the better of its ranks in A and B, and credits each ranker with the
    clicked movies in its own top k."""
    return con.sql(
        f"""WITH requests AS (
               SELECT DISTINCT json_extract_string(payload, '$.request_id') AS request_id, user_id
               FROM marts.fct_feedback_events
               WHERE event_type = 'exposure' AND experiment_id = ? AND occurred_at > ?),
           listed AS (
               SELECT json_extract_string(payload, '$.request_id') AS request_id, movie_id,
                      json_extract_string(payload, '$.team') AS team,
                      CAST(json_extract(payload, '$.position') AS INTEGER) AS position,
                      CAST(json_extract(payload, '$.rank_a') AS INTEGER) AS rank_a,
                      CAST(json_extract(payload, '$.rank_b') AS INTEGER) AS rank_b
               FROM marts.fct_feedback_events
               WHERE event_type = 'impression' AND occurred_at > ?
                 AND json_extract_string(payload, '$.request_id') IN (SELECT request_id FROM requests)),
           clicked AS (
               SELECT DISTINCT json_extract_string(payload, '$.request_id') AS request_id, movie_id
               FROM marts.fct_feedback_events
               WHERE event_type = 'click' AND occurred_at > ?),
           shown AS (
               SELECT r.user_id, l.*, c.movie_id IS NOT NULL AS click,
                      arg_max(least(l.rank_a, l.rank_b), l.position) FILTER (c.movie_id IS NOT NULL)
                          OVER (PARTITION BY l.request_id) AS k
               FROM requests r
               LEFT JOIN listed l USING (request_id)
               LEFT JOIN clicked c ON c.request_id = l.request_id AND c.movie_id = l.movie_id)
           SELECT user_id,
                  count(*) FILTER ({_CREDIT[test.design].format(team="A", rank="rank_a")}) AS credit_a,
                  count(*) FILTER ({_CREDIT[test.design].format(team="B", rank="rank_b")}) AS credit_b
           FROM shown GROUP BY user_id ORDER BY user_id""",
        params=[test.experiment_id, test.started_at, test.started_at, test.started_at]).pl()


# When a listed movie's click counts for a team: its position's team (team draft), or the team's own rank within
# the request's top k (balanced).
_CREDIT = {"team_draft": "click AND team = '{team}'", "balanced": "click AND {rank} <= k"}


def analyse(test: RankingTest, credits: pl.DataFrame, previous_sequential_p: float = 1.0, alpha: float = 0.05,
            power: float = 0.8) -> dict:
    """The verdict so far, its always-valid p-value (``previous_sequential_p``: the lowest of earlier looks), the
    users 80% power needs at the observed gap, and whether the test is decided."""
    wins_a = int((credits["credit_a"] > credits["credit_b"]).sum())
    wins_b = int((credits["credit_b"] > credits["credit_a"]).sum())
    clicked = int(((credits["credit_a"] + credits["credit_b"]) > 0).sum())
    verdict = interleaving.verdict_from_counts(wins_a, wins_b, clicked - wins_a - wins_b, credits.height,
                                               test.ranker_a, test.ranker_b, alpha)
    required = None
    if wins_a + wins_b and wins_a != wins_b:
        p_win, tie_share = interleaving.effect_from_pilot(verdict)
        required = interleaving.required_users(p_win, tie_share, alpha, power)
    sequential_p = min(previous_sequential_p, sequential.sign_test_p_value(wins_a, wins_b))
    decided = sequential_p < alpha and wins_a != wins_b and wins_a + wins_b >= test.min_users
    line = f"{verdict.line()}; always-valid p={sequential_p:.2g}"
    return {"verdict": verdict, "sequential_p": sequential_p, "required_users": required, "decided": decided,
            "winner": (test.ranker_b if wins_b > wins_a else test.ranker_a) if decided else None, "line": line}


def previous_sequential_p(con: duckdb.DuckDBPyConnection, experiment_id: str) -> float:
    """The lowest always-valid p-value of the test's earlier looks (1 before the first)."""
    ensure_schema(con)
    rows = con.execute("SELECT min(sequential_p) FROM experiments.interleaving_results WHERE experiment_id = ?",
                       [experiment_id]).fetchall()
    return 1.0 if rows[0][0] is None else float(rows[0][0])


def save(con: duckdb.DuckDBPyConnection, test: RankingTest, result: dict) -> None:
    """Append the analysis to ``experiments.interleaving_results``."""
    v = result["verdict"]
    preference_b = None if v.wins_a + v.wins_b == 0 else v.wins_b / (v.wins_a + v.wins_b)
    con.execute("INSERT INTO experiments.interleaving_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [test.experiment_id, utc_now(), test.ranker_a, test.ranker_b, v.users, v.wins_a, v.wins_b, v.ties,
                 preference_b, 1 - v.ci_high, 1 - v.ci_low, v.p_value, result["sequential_p"],
                 result["required_users"], result["winner"]])

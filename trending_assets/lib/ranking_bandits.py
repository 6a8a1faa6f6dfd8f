"""A bandit over /trending rankers: Thompson sampling moves traffic to the ranker that earns clicks, and
off-policy evaluation of its logs says whether a fixed ranker would beat the policy that logged them.

A bandit is a plan ``Experiment`` on surface ``ranking`` with design ``bandit``: its variants are the rankers and
their weights the policy's current probabilities. A user's arm is the inverse CDF of a hash of the user (the
experiment's salt) under those weights, so it sticks while the weights stay, and the logged propensity is exactly
the weight the plan gave the arm. The router logs it in the exposure's payload. The reward of a request is the share
of its listed movies the user clicked (clicks carry the request id): "any click" saturates near 0.9 on a list of
20 and hid a ranker that earns many more clicks. Thompson sampling treats it as a fractional success, which
overstates its variance (a mean of 20 clicks varies less than one), so the policy moves traffic conservatively.

``analyse`` rebuilds the Thompson state from every logged decision since the start (learning is a pure function of
the logs, so re-running it changes nothing), gives the next weights (exploration floor and warm-up applied), and
for each ranker estimates "always this ranker" from the logs with SNIPS and doubly robust estimators; the OPE gate
(``off_policy.gate``: the lower confidence bound above the logged policy's own value) says which fixed ranker is
proven better than the bandit's mix before it gets all the traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import polars as pl

from trending_assets.lib import bandits, deployment_plan, off_policy
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.rankers import RANKERS
from trending_assets.lib.warehouse import table_exists

DDL = (
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.ranking_bandits (
        experiment_id VARCHAR PRIMARY KEY,
        salt VARCHAR NOT NULL,
        arms JSON NOT NULL,                    -- ranker names, the incumbent first
        floor DOUBLE NOT NULL,                 -- share of traffic spread evenly over the arms, always
        warmup BIGINT NOT NULL,                -- requests per arm before the policy moves traffic
        weights JSON NOT NULL,                 -- the current probabilities, in arms order: the plan's weights
        status VARCHAR NOT NULL,               -- running | stopped
        started_at TIMESTAMP NOT NULL,         -- data watermark: traffic after it counts
        created_at TIMESTAMP NOT NULL,
        verdict VARCHAR                        -- the latest OPE gate that passed, if any
    )""",
    """CREATE TABLE IF NOT EXISTS experiments.bandit_results (
        experiment_id VARCHAR NOT NULL,
        analysed_at TIMESTAMP NOT NULL,
        arm VARCHAR NOT NULL,
        requests BIGINT NOT NULL,              -- logged decisions for this arm
        click_rate DOUBLE,                     -- its on-policy reward: the share of listed movies clicked
        next_weight DOUBLE NOT NULL,           -- its probability from now on
        snips DOUBLE, snips_low DOUBLE, snips_high DOUBLE,   -- "always this arm", off-policy
        dr DOUBLE, dr_low DOUBLE, dr_high DOUBLE,
        logged_value DOUBLE NOT NULL,          -- the logging policy's value (on-policy mean)
        gate_passed BOOLEAN NOT NULL,          -- DR lower bound above the logged value, enough effective sample
        reason VARCHAR NOT NULL
    )""",
)


@dataclass(frozen=True)
class RankingBandit:
    experiment_id: str
    salt: str
    arms: list[str]
    floor: float
    warmup: int
    weights: list[float]
    status: str
    started_at: datetime

    def plan_experiment(self) -> deployment_plan.Experiment:
        return deployment_plan.Experiment(self.experiment_id, "ranking", self.salt, 100.0, tuple(
            deployment_plan.Variant(arm, weight, ranker=arm) for arm, weight in zip(self.arms, self.weights)),
            design="bandit")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def start(con: duckdb.DuckDBPyConnection, experiment_id: str, arms: list[str], started_at: datetime,
          floor: float = 0.1, warmup: int = 200) -> RankingBandit:
    """Record a running bandit over ``arms`` (rankers), uniform until every arm has ``warmup`` requests."""
    ensure_schema(con)
    unknown = [arm for arm in arms if arm not in RANKERS]
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} not a ranker; use rankers from {', '.join(RANKERS)}")
    if not 0 < floor < 1:
        raise ValueError(f"--floor {floor!r}: give a share in (0, 1); off-policy evaluation needs every arm logged "
                         "with some probability")
    policy = bandits.ThompsonSampling(arms, floor=floor, warmup=warmup)  # validates the arms
    if experiment_id in {b.experiment_id for b in running(con)}:
        raise ValueError(f"bandit {experiment_id!r} is already running; stop it first or pick another id")
    con.execute("INSERT INTO experiments.ranking_bandits VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL)",
                [experiment_id, f"{experiment_id}-salt", json.dumps(arms), floor, warmup,
                 json.dumps(policy.probabilities().tolist()), started_at, utc_now()])
    return running(con)[-1]


def running(con: duckdb.DuckDBPyConnection) -> list[RankingBandit]:
    if not table_exists(con, "experiments", "ranking_bandits"):
        return []
    rows = con.execute("SELECT experiment_id, salt, arms, floor, warmup, weights, status, started_at "
                       "FROM experiments.ranking_bandits WHERE status = 'running' ORDER BY created_at").fetchall()
    return [RankingBandit(r[0], r[1], json.loads(r[2]), r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]


def stop(con: duckdb.DuckDBPyConnection, experiment_id: str, reason: str) -> None:
    con.execute("UPDATE experiments.ranking_bandits SET status = 'stopped', verdict = ? WHERE experiment_id = ?",
                [reason, experiment_id])


def decisions(con: duckdb.DuckDBPyConnection, bandit: RankingBandit) -> pl.DataFrame:
    """Every logged decision of the bandit: arm, its logged propensity, and the reward: the share of the listed
    movies the user clicked (in [0, 1])."""
    return con.sql(
        """WITH logged AS (
               SELECT json_extract_string(payload, '$.request_id') AS request_id, user_id, variant AS arm,
                      try_cast(json_extract_string(payload, '$.propensity') AS DOUBLE) AS propensity, occurred_at
               FROM marts.fct_feedback_events
               WHERE event_type = 'exposure' AND experiment_id = ? AND occurred_at > ?),
           listed AS (
               SELECT json_extract_string(payload, '$.request_id') AS request_id, count(*) AS movies
               FROM marts.fct_feedback_events
               WHERE event_type = 'impression' AND occurred_at > ?
                 AND json_extract_string(payload, '$.request_id') IN (SELECT request_id FROM logged)
               GROUP BY 1),
           clicked AS (
               SELECT json_extract_string(payload, '$.request_id') AS request_id, count(DISTINCT movie_id) AS clicks
               FROM marts.fct_feedback_events WHERE event_type = 'click' AND occurred_at > ? GROUP BY 1)
           SELECT l.user_id, l.arm, l.propensity,
                  least(coalesce(c.clicks, 0) / greatest(m.movies, 1), 1.0)::DOUBLE AS reward
           FROM logged l JOIN listed m USING (request_id) LEFT JOIN clicked c USING (request_id)
           ORDER BY l.occurred_at, l.request_id""",
        params=[bandit.experiment_id, bandit.started_at, bandit.started_at, bandit.started_at]).pl()


def analyse(bandit: RankingBandit, logged: pl.DataFrame, n_resamples: int = 1000) -> dict:
    """The learned policy's next weights and, per arm, the off-policy value of always choosing it."""
    policy = bandits.ThompsonSampling(bandit.arms, floor=bandit.floor, warmup=bandit.warmup)
    arms = logged["arm"].to_list()
    rewards = logged["reward"].to_numpy()
    for i, arm in enumerate(bandit.arms):
        mine = np.array([a == arm for a in arms], dtype=bool)
        policy.counts[i], policy.reward_sums[i] = mine.sum(), rewards[mine].sum()
    weights = policy.probabilities().tolist()
    rows, passed = [], []
    if logged.is_empty():
        return {"weights": weights, "rows": rows, "passed": passed, "logged_value": None}
    logged_value = off_policy.on_policy(rewards, n_resamples)
    for i, arm in enumerate(bandit.arms):
        always = np.zeros((logged.height, len(bandit.arms)))
        always[:, i] = 1.0
        args = (arms, rewards, logged["propensity"].to_numpy(), always)
        snips = off_policy.snips(*args, arms=bandit.arms, n_resamples=n_resamples)
        dr = off_policy.doubly_robust(*args, arms=bandit.arms, n_resamples=n_resamples)
        gate = off_policy.gate(dr, logged_value)
        if gate.passed:
            passed.append(f"always {arm}: {gate.reason}")
        mine = int(policy.counts[i])
        rows.append({"arm": arm, "requests": mine, "click_rate": float(policy.reward_sums[i] / mine) if mine else None,
                     "next_weight": weights[i], "snips": snips.value, "snips_low": snips.ci_low,
                     "snips_high": snips.ci_high, "dr": dr.value, "dr_low": dr.ci_low, "dr_high": dr.ci_high,
                     "logged_value": logged_value.value, "gate_passed": gate.passed, "reason": gate.reason})
    return {"weights": weights, "rows": rows, "passed": passed, "logged_value": logged_value.value}


def save(con: duckdb.DuckDBPyConnection, bandit: RankingBandit, result: dict) -> bool:
    """Store the analysis and the new weights; True when the weights moved (the plan must be republished)."""
    now = utc_now()
    for row in result["rows"]:
        con.execute("INSERT INTO experiments.bandit_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [bandit.experiment_id, now, *row.values()])
    verdict = "; ".join(result["passed"]) or None
    con.execute("UPDATE experiments.ranking_bandits SET weights = ?, verdict = coalesce(?, verdict) "
                "WHERE experiment_id = ?", [json.dumps(result["weights"]), verdict, bandit.experiment_id])
    return not np.allclose(result["weights"], bandit.weights, atol=1e-3)

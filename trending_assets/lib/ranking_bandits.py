"""A bandit over /trending rankers: a policy (Thompson sampling, UCB1 or epsilon-greedy) moves traffic to the ranker
that earns clicks, and off-policy evaluation of its logs says whether a fixed ranker would beat the policy that
logged them.

A bandit is a plan ``Experiment`` on surface ``ranking`` with design ``bandit``: its variants are the rankers and
their weights the policy's current probabilities. A user's arm is the inverse CDF of a hash of the user (the
experiment's salt) under those weights, so it sticks while the weights stay, and the logged propensity is exactly
the weight the plan gave the arm. The router logs it, and the whole weights vector, in the exposure's payload. The
reward of a request is the share of its listed movies the user clicked (clicks carry the request id): "any click"
saturates near 0.9 on a list of 20 and hid a ranker that earns many more clicks. Thompson sampling treats it as a
fractional success, which overstates its variance (a mean of 20 clicks varies less than one), so the policy moves
traffic conservatively. The served policies are the context-free ones (``POLICIES``): the plan gives every user the
same weights, so LinUCB, whose distribution depends on the user's features, stays in ``bandits`` for offline use.

``analyse`` rebuilds the policy's state from every logged decision since the start (learning is a pure function of
the logs, so re-running it changes nothing), gives the next weights (exploration floor and warm-up applied), and
for each ranker estimates "always this ranker" from the logs with SNIPS and doubly robust estimators; the OPE gate
(``off_policy.gate``: the lower confidence bound above the logged policy's own value) says which fixed ranker is
proven better than the bandit's mix before it gets all the traffic. A user's requests share the user's taste, so
every interval resamples users, not requests. The allocation audit (``bandit_allocation.allocation_srm``) checks
the propensities those estimates rest on: the realised arms of users' first exposures must match the weights those
exposures logged (a returning user's arm is not a new draw, see ``allocation_audit``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import polars as pl

from trending_assets.lib import bandit_allocation, bandits, deployment_plan, off_policy
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
    # Added later: ALTER, not the CREATE above, so existing warehouses gain them too (old bandits ran Thompson).
    "ALTER TABLE experiments.ranking_bandits ADD COLUMN IF NOT EXISTS policy VARCHAR DEFAULT 'thompson'",  # in POLICIES
    "ALTER TABLE experiments.ranking_bandits ADD COLUMN IF NOT EXISTS policy_params JSON DEFAULT '{}'",
    # the latest allocation audit's chi-square p-value; NULL until exposures log their weights
    "ALTER TABLE experiments.ranking_bandits ADD COLUMN IF NOT EXISTS allocation_p DOUBLE",
)
# The policies a bandit may serve: context-free, so the plan's one weights vector is every user's distribution.
POLICIES: dict[str, type[bandits.Policy]] = {
    "thompson": bandits.ThompsonSampling, "ucb1": bandits.UCB1, "epsilon_greedy": bandits.EpsilonGreedy}


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
    policy: str = "thompson"  # a key of POLICIES
    policy_params: dict = field(default_factory=dict)  # its constructor arguments beyond arms, floor and warmup

    def new_policy(self) -> bandits.Policy:
        """The bandit's policy with nothing learned yet: its configuration, no observations."""
        return POLICIES[self.policy](self.arms, floor=self.floor, warmup=self.warmup, **self.policy_params)

    def plan_experiment(self) -> deployment_plan.Experiment:
        return deployment_plan.Experiment(self.experiment_id, "ranking", self.salt, 100.0, tuple(
            deployment_plan.Variant(arm, weight, ranker=arm) for arm, weight in zip(self.arms, self.weights)),
            design="bandit")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the bandit tables, or add the columns a warehouse from an earlier version lacks."""
    for statement in DDL:
        con.execute(statement)


def start(con: duckdb.DuckDBPyConnection, experiment_id: str, arms: list[str], started_at: datetime,
          floor: float = 0.1, warmup: int = 200, policy: str = "thompson", params: dict | None = None) -> RankingBandit:
    """Record a running bandit over ``arms`` (rankers), uniform until every arm has ``warmup`` requests, then moved
    by ``policy`` (a key of ``POLICIES``, with ``params`` such as ``{"epsilon": 0.1}``)."""
    ensure_schema(con)
    unknown = [arm for arm in arms if arm not in RANKERS]
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} not a ranker; use rankers from {', '.join(RANKERS)}")
    if not 0 < floor < 1:
        raise ValueError(f"--floor {floor!r}: give a share in (0, 1); off-policy evaluation needs every arm logged "
                         "with some probability")
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r} cannot be served; use one of {', '.join(POLICIES)} (LinUCB needs each "
                         "user's features at serving time, which the plan's one weights vector cannot carry)")
    learner = POLICIES[policy](arms, floor=floor, warmup=warmup, **(params or {}))  # validates arms and params
    if experiment_id in {b.experiment_id for b in running(con)}:
        raise ValueError(f"bandit {experiment_id!r} is already running; stop it first or pick another id")
    con.execute("INSERT INTO experiments.ranking_bandits (experiment_id, salt, arms, floor, warmup, weights, status, "
                "started_at, created_at, verdict, policy, policy_params) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL, ?, ?)",
                [experiment_id, f"{experiment_id}-salt", json.dumps(arms), floor, warmup,
                 json.dumps(learner.probabilities().tolist()), started_at, utc_now(), policy,
                 json.dumps(learner.state()["params"])])
    return running(con)[-1]


def running(con: duckdb.DuckDBPyConnection) -> list[RankingBandit]:
    if not table_exists(con, "experiments", "ranking_bandits"):
        return []
    ensure_schema(con)  # a warehouse from before the policy columns gains them (as a Thompson bandit)
    rows = con.execute("SELECT experiment_id, salt, arms, floor, warmup, weights, status, started_at, policy, "
                       "policy_params FROM experiments.ranking_bandits WHERE status = 'running' "
                       "ORDER BY created_at").fetchall()
    return [RankingBandit(r[0], r[1], json.loads(r[2]), r[3], r[4], json.loads(r[5]), r[6], r[7], r[8],
                          json.loads(r[9])) for r in rows]


def stop(con: duckdb.DuckDBPyConnection, experiment_id: str, reason: str) -> None:
    con.execute("UPDATE experiments.ranking_bandits SET status = 'stopped', verdict = ? WHERE experiment_id = ?",
                [reason, experiment_id])


def decisions(con: duckdb.DuckDBPyConnection, bandit: RankingBandit) -> pl.DataFrame:
    """Every logged decision of the bandit: user, arm, its logged propensity, the reward (the share of the listed
    movies the user clicked, in [0, 1]) and the weights the arm was drawn from (JSON text by arm; null in logs
    from before the router logged them)."""
    return con.sql(
        """WITH logged AS (
               SELECT json_extract_string(payload, '$.request_id') AS request_id, user_id, variant AS arm,
                      try_cast(json_extract_string(payload, '$.propensity') AS DOUBLE) AS propensity,
                      json_extract(payload, '$.weights')::VARCHAR AS weights, occurred_at
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
                  least(coalesce(c.clicks, 0) / greatest(m.movies, 1), 1.0)::DOUBLE AS reward, l.weights
           FROM logged l JOIN listed m USING (request_id) LEFT JOIN clicked c USING (request_id)
           ORDER BY l.occurred_at, l.request_id""",
        params=[bandit.experiment_id, bandit.started_at, bandit.started_at, bandit.started_at]).pl()


def analyse(bandit: RankingBandit, logged: pl.DataFrame, n_resamples: int = 1000) -> dict:
    """The learned policy's next weights, the allocation audit, and per arm the off-policy value of always
    choosing it (intervals resample users)."""
    policy = bandit.new_policy()
    arms = logged["arm"].to_list()
    rewards = logged["reward"].to_numpy()
    for i, arm in enumerate(bandit.arms):
        mine = np.array([a == arm for a in arms], dtype=bool)
        policy.counts[i], policy.reward_sums[i] = mine.sum(), rewards[mine].sum()
    weights = policy.probabilities().tolist()
    rows, passed, allocation = [], [], allocation_audit(bandit, logged)
    if logged.is_empty():
        return {"weights": weights, "rows": rows, "passed": passed, "logged_value": None, "allocation_srm": allocation}
    users = logged["user_id"].to_list()
    logged_value = off_policy.on_policy(rewards, n_resamples, groups=users)
    for i, arm in enumerate(bandit.arms):
        always = np.zeros((logged.height, len(bandit.arms)))
        always[:, i] = 1.0
        args = (arms, rewards, logged["propensity"].to_numpy(), always)
        snips = off_policy.snips(*args, arms=bandit.arms, n_resamples=n_resamples, groups=users)
        dr = off_policy.doubly_robust(*args, arms=bandit.arms, n_resamples=n_resamples, groups=users)
        gate = off_policy.gate(dr, logged_value)
        if gate.passed and allocation is not None and not allocation["ok"]:
            # the estimates weigh rows by propensities the allocation did not keep to: nothing is proven
            gate = off_policy.GateDecision(False, f"held: {allocation['line']}", gate.candidate_ci_low,
                                           gate.current_value)
        if gate.passed:
            passed.append(f"always {arm}: {gate.reason}")
        mine = int(policy.counts[i])
        rows.append({"arm": arm, "requests": mine, "click_rate": float(policy.reward_sums[i] / mine) if mine else None,
                     "next_weight": weights[i], "snips": snips.value, "snips_low": snips.ci_low,
                     "snips_high": snips.ci_high, "dr": dr.value, "dr_low": dr.ci_low, "dr_high": dr.ci_high,
                     "logged_value": logged_value.value, "gate_passed": gate.passed, "reason": gate.reason})
    return {"weights": weights, "rows": rows, "passed": passed, "logged_value": logged_value.value,
            "allocation_srm": allocation}


def allocation_audit(bandit: RankingBandit, logged: pl.DataFrame, threshold: float = 0.001) -> dict | None:
    """Did the users' arms follow the logged weights? ``allocation_srm`` over each user's first decision that
    logged its weights (``logged`` in time order, as ``decisions`` returns it); None when none did.

    Only a user's first decision is an independent draw. Later requests under the same weights repeat the sticky arm,
    and under new weights the arm is redrawn from the same hash of the user, so it mostly repeats too; and whether a
    user comes back at all depends on how the arm served them. Counting those would weigh returning users' arms as
    new users and raise false alarms. A mismatch means the logged propensities are not the probabilities the arms
    had, and the off-policy estimates built on them are not to be trusted. The line names each arm's users against
    the count its weights promised.
    """
    draws = logged.filter(pl.col("weights").is_not_null()).unique("user_id", keep="first", maintain_order=True)
    if draws.is_empty():
        return None
    srm = bandit_allocation.allocation_srm(draws["arm"].to_list(), [json.loads(w) for w in draws["weights"]],
                                           bandit.arms, threshold)
    counts = ", ".join(f"{arm} {seen} users (expected {share * draws.height:.1f})"
                       for arm, seen, share in zip(bandit.arms, srm.observed, srm.expected_shares))
    line = (f"allocation matches the logged weights (chi-square p={srm.p_value:.3g}): {counts}" if srm.ok else
            f"allocation MISMATCH (chi-square p={srm.p_value:.3g} < {threshold:g}): {counts}; the logged "
            "propensities are not the probabilities the arms were drawn with, so off-policy estimates are suspect")
    return {"p_value": srm.p_value, "ok": srm.ok, "users": draws.height,
            "observed": dict(zip(bandit.arms, srm.observed)),
            "expected_shares": dict(zip(bandit.arms, srm.expected_shares)), "line": line}


def save(con: duckdb.DuckDBPyConnection, bandit: RankingBandit, result: dict) -> bool:
    """Store the analysis and the new weights; True when the weights moved (the plan must be republished)."""
    now = utc_now()
    for row in result["rows"]:
        con.execute("INSERT INTO experiments.bandit_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [bandit.experiment_id, now, *row.values()])
    verdict = "; ".join(result["passed"]) or None
    allocation = result["allocation_srm"]
    con.execute("UPDATE experiments.ranking_bandits SET weights = ?, verdict = coalesce(?, verdict), allocation_p = ? "
                "WHERE experiment_id = ?", [json.dumps(result["weights"]), verdict,
                                            allocation["p_value"] if allocation else None, bandit.experiment_id])
    return not np.allclose(result["weights"], bandit.weights, atol=1e-3)

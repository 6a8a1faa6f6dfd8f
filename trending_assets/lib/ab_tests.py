"""A/B tests of a serving surface other than the model, e.g. two vibe-tag prompt variants on click-through.

Such a test is a plan ``Experiment`` (surface ``vibe_tags``, a salt of its own, variants naming generators), so it
runs beside a model rollout without touching it: assignment hashes a different salt, so a user's tag variant is
independent of their model. The router logs one ``exposure`` per request for the test (its experiment id and
variant); a user's clicks and impressions after the test's start are counted for the variant they were exposed to.

Metrics, per user: ``click_through_rate`` (clicks per impression; primary, Welch with CUPED on the user's click
rate before the test) and ``clicked`` (any click; two-proportion z-test), Holm across the two, SRM against the
planned weights, and the primary's always-valid p-value for the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from trending_assets.lib import ab_stats, deployment_plan, sequential
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.warehouse import table_exists

DDL = (
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.ab_tests (
        experiment_id VARCHAR PRIMARY KEY,
        surface VARCHAR NOT NULL,              -- vibe_tags
        salt VARCHAR NOT NULL,
        variants JSON NOT NULL,                -- [{"name": ..., "generator": ..., "weight": ...}], control first
        allocation_percent DOUBLE NOT NULL,
        mde DOUBLE NOT NULL,                   -- absolute, on click_through_rate
        planned_users_per_arm BIGINT NOT NULL,
        status VARCHAR NOT NULL,               -- running | decided | stopped
        started_at TIMESTAMP NOT NULL,         -- data watermark: traffic after it counts
        created_at TIMESTAMP NOT NULL,
        decided_at TIMESTAMP,
        verdict VARCHAR
    )""",
)
PRIMARY = "click_through_rate"


@dataclass(frozen=True)
class ABTest:
    experiment_id: str
    surface: str
    salt: str
    variants: list[dict]
    allocation_percent: float
    mde: float
    planned_users_per_arm: int
    status: str
    started_at: datetime

    def plan_experiment(self) -> deployment_plan.Experiment:
        return deployment_plan.Experiment(self.experiment_id, self.surface, self.salt, self.allocation_percent, tuple(
            deployment_plan.Variant(v["name"], v["weight"], generator=v["generator"]) for v in self.variants))


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def start(con: duckdb.DuckDBPyConnection, experiment_id: str, surface: str, generators: list[str],
          started_at: datetime, mde: float = 0.004, baseline: float = 0.1, allocation_percent: float = 100.0,
          sd: float | None = None) -> ABTest:
    """Record a running test, even split across ``generators`` (the first is control). The power analysis sizes
    it for ``mde`` on the per-user click-through rate: with ``sd`` (its spread across users before the test) as a
    difference of means, else as a difference of proportions at ``baseline`` (more users than needed, since a
    user's rate averages many impressions)."""
    ensure_schema(con)
    if len(generators) < 2 or len(set(generators)) != len(generators):
        raise ValueError(f"an A/B test needs at least two different variants; got {generators}")
    weight = 1 / len(generators)
    variants = [{"name": name, "generator": name, "weight": weight} for name in generators]
    planned = (ab_stats.required_sample_size(baseline, mde, kind="mean", sd=sd) if sd
               else ab_stats.required_sample_size(baseline, mde, kind="proportion"))
    con.execute("INSERT INTO experiments.ab_tests VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL, NULL)",
                [experiment_id, surface, f"{experiment_id}-salt", json.dumps(variants), allocation_percent, mde,
                 planned, started_at, utc_now()])
    return running(con)[-1]


def running(con: duckdb.DuckDBPyConnection) -> list[ABTest]:
    if not table_exists(con, "experiments", "ab_tests"):
        return []
    rows = con.execute("SELECT experiment_id, surface, salt, variants, allocation_percent, mde, "
                       "planned_users_per_arm, status, started_at FROM experiments.ab_tests WHERE status = 'running' "
                       "ORDER BY created_at").fetchall()
    return [ABTest(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in rows]


def pre_period_spread(con: duckdb.DuckDBPyConnection, before: datetime) -> tuple[float, float] | None:
    """(mean, sd) of the users' click-through rate in the 14 days before ``before``; None with under 30 users."""
    from trending_assets.lib.experiment_store import load_pre_period

    rates = load_pre_period(con, before)["pre_click_rate"]
    return (float(rates.mean()), float(rates.std())) if rates.len() >= 30 else None


def finish(con: duckdb.DuckDBPyConnection, experiment_id: str, status: str, verdict: str) -> None:
    con.execute("UPDATE experiments.ab_tests SET status = ?, verdict = ?, decided_at = ? WHERE experiment_id = ?",
                [status, verdict, utc_now(), experiment_id])


def save(con: duckdb.DuckDBPyConnection, test: ABTest, result: dict) -> None:
    """Append the analysis to ``experiments.results`` (metric rows) and ``experiments.srm``."""
    now = utc_now()
    days = result.get("days", 0)
    for row in result["rows"]:
        con.execute(
            "INSERT INTO experiments.results (experiment_id, analysed_at, phase, percent, days, metric, role, method, "
            "control_n, treatment_n, control_mean, treatment_mean, diff, ci_low, ci_high, p_value, p_adjusted, "
            "variance_reduction, sequential_p, improved, harmed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?)",
            [test.experiment_id, now, f"ab:{row['variant']}", test.allocation_percent, days, row["metric"],
             "primary" if row["metric"] == PRIMARY else "secondary", row["method"], row["control_n"],
             row["treatment_n"], row["control_mean"], row["treatment_mean"], row["diff"], row["ci_low"],
             row["ci_high"], row["p_value"], row["p_adjusted"], row["variance_reduction"], row["sequential_p"],
             row["significant"] and row["diff"] > 0, row["significant"] and row["diff"] < 0])
    if result["srm"]:
        srm = result["srm"]
        con.execute("INSERT INTO experiments.srm VALUES (?, ?, 'ab', ?, ?, ?, ?, ?, ?)",
                    [test.experiment_id, now, srm["observed"][0], sum(srm["observed"][1:]),
                     1 - srm["expected_shares"][0], srm["chi2"], srm["p_value"], srm["ok"]])


def user_metrics(con: duckdb.DuckDBPyConnection, test: ABTest) -> pl.DataFrame:
    """Per user and day (cumulative over days happens in ``analyse``): variant, impressions, clicks."""
    return con.sql(
        """WITH exposed AS (
               SELECT user_id, any_value(variant) AS variant
               FROM marts.fct_feedback_events
               WHERE event_type = 'exposure' AND experiment_id = ? AND occurred_at > ?
               GROUP BY user_id)
           SELECT e.user_id, x.variant, e.occurred_at::DATE AS day,
                  count(*) FILTER (e.event_type = 'impression') AS impressions,
                  count(*) FILTER (e.event_type = 'click') AS clicks
           FROM marts.fct_feedback_events e JOIN exposed x USING (user_id)
           WHERE e.occurred_at > ? AND e.event_type IN ('impression', 'click')
           GROUP BY ALL""", params=[test.experiment_id, test.started_at, test.started_at]).pl()


def analyse(test: ABTest, daily: pl.DataFrame, pre: pl.DataFrame, alpha: float = 0.05) -> dict:
    """Control (first variant) against each other variant: rows for experiments.results, SRM, and a verdict."""
    names = [v["name"] for v in test.variants]
    looks = sorted(daily["day"].unique().to_list())
    if not looks:
        return {"rows": [], "srm": None, "winner": None, "reason": "no traffic yet", "users": {}}
    cumulative = [_per_user(daily.filter(pl.col("day") <= day)) for day in looks]
    final = cumulative[-1].join(pre, on="user_id", how="left").with_columns(pl.col("pre_click_rate").fill_null(0.0))
    users = {n: final.filter(pl.col("variant") == n).height for n in names}
    srm = ab_stats.srm_check([users[n] for n in names], [v["weight"] for v in test.variants])
    rows, winner, reason = [], None, "no variant significantly different yet"
    control = final.filter(pl.col("variant") == names[0])
    for name in names[1:]:
        treatment = final.filter(pl.col("variant") == name)
        if min(control.height, treatment.height) < 2:
            continue
        primary = (ab_stats.cuped_welch_test(PRIMARY, control[PRIMARY], control["pre_click_rate"], treatment[PRIMARY],
                                             treatment["pre_click_rate"], alpha)
                   if final["pre_click_rate"].std() > 0 else
                   ab_stats.welch_test(PRIMARY, control[PRIMARY], treatment[PRIMARY], alpha))
        clicked = ab_stats.two_proportion_test("clicked", int(control["clicked"].sum()), control.height,
                                               int(treatment["clicked"].sum()), treatment.height, alpha)
        seq = sequential.from_looks(*_looks(cumulative, names[0], name), test.mde, alpha)
        holm = ab_stats.adjust_pvalues([primary.p_value, clicked.p_value], "holm")
        for comparison, adjusted in zip((primary, clicked), holm):
            rows.append({"variant": name, **comparison.as_dict(), "p_adjusted": adjusted,
                         "sequential_p": seq.p_value if comparison is primary else None})
        if srm.ok and seq.significant:
            winner = name if seq.diff > 0 else names[0]
            reason = (f"{name} vs {names[0]}: {PRIMARY} {primary.control_mean:.4f} -> {primary.treatment_mean:.4f} "
                      f"(diff {seq.diff:+.4f}, always-valid p={seq.p_value:.4f}, Holm-adjusted fixed p="
                      f"{holm[0]:.4f}); {winner} wins")
    if not srm.ok:
        reason = f"sample ratio mismatch (chi-squared p={srm.p_value:.2g}): invalid, no decision"
    elif winner is None and min(users.values()) >= test.planned_users_per_arm:
        winner, reason = names[0], (f"no significant difference after {min(users.values())} users per arm "
                                    f"(planned {test.planned_users_per_arm}): keep {names[0]}")
    return {"rows": rows, "srm": srm.as_dict(), "winner": winner, "reason": reason, "users": users,
            "days": len(looks)}


def _per_user(daily: pl.DataFrame) -> pl.DataFrame:
    return (daily.group_by("user_id", "variant").agg(pl.col("impressions").sum(), pl.col("clicks").sum())
            .filter(pl.col("impressions") > 0)
            .with_columns((pl.col("clicks") / pl.col("impressions")).alias(PRIMARY),
                          (pl.col("clicks") > 0).cast(pl.Float64).alias("clicked")))


def _looks(cumulative: list[pl.DataFrame], control: str, treatment: str) -> tuple[list[float], list[float]]:
    diffs, variances = [], []
    for frame in cumulative:
        diff, variance = sequential.welch_look(frame.filter(pl.col("variant") == control)[PRIMARY].to_numpy(),
                                               frame.filter(pl.col("variant") == treatment)[PRIMARY].to_numpy())
        diffs.append(diff)
        variances.append(variance)
    return diffs, variances

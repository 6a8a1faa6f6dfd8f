"""The rollout of a challenger, as decisions over plain data: shadow -> canary ramp -> A/B -> promote or roll back.

The ramp is one canary whose percent grows: 1% -> 5% -> 25% -> 50%. Every step checks the guardrails with the
sequential test on the traffic since the step began, and a breach rolls the challenger back. The 50% step is the
A/B test (50/50 by user id): it starts with a power analysis (users per arm and expected days for the planned
MDE), checks the sample ratio, and decides on the primary metric with an always-valid p-value, so the daily looks
do not inflate false positives. A winner is ``production-validated``; it becomes champion at once
(``approval: auto``) or when a person approves it (``approval: manual``). The sticky salt keeps each user's arm
across the ramp: bucket < 1% is also < 5%.

``decide`` is pure; ``apply`` performs a decision's registry moves and state change. The deployment plan is a
function of the state (``plan_for``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from trending_assets.lib import (ab_stats, ab_tests, deployment_plan, experiment_store, ranker_candidates,
                                 ranking_bandits, ranking_tests, registry)
from trending_assets.lib.experiment_analysis import PRIMARY, Analysis

CHAMPION, CHALLENGER, VALIDATED = "champion", "challenger", "production-validated"
APPROVALS = ("auto", "manual")
HOLD, ADVANCE, ROLLBACK, VALIDATE, REJECT, INVALID = "hold", "advance", "rollback", "validate", "reject", "invalid"


@dataclass(frozen=True)
class RolloutPolicy:
    ramp: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0)
    shadow_min_requests: int = 100
    shadow_max_error_rate: float = 0.01
    shadow_max_p99_ms: float = 50.0
    min_users_per_step: int = 20  # challenger users a canary step needs before it can move up
    approval: str = "auto"
    alpha: float = 0.05
    power: float = 0.8
    mde: float = 0.004  # the primary metric's planned absolute effect
    max_ab_users_per_arm: int | None = None  # stop for futility at the planned sample size (None: the power analysis)
    # ...or after this many days of A/B data: a returning audience adds impressions per user, not new users, so the
    # planned number of users may never arrive (GrowthBook and Statsig cap an experiment's duration the same way)
    max_ab_days: int = 14

    def __post_init__(self) -> None:
        if self.approval not in APPROVALS:
            raise ValueError(f"approval {self.approval!r} must be one of {', '.join(APPROVALS)}")
        ramp = list(self.ramp)
        if len(ramp) < 2 or ramp != sorted(set(ramp)) or not 0 < ramp[0] or ramp[-1] > 50:
            raise ValueError(f"ramp {self.ramp} must be at least two canary percents increasing from above 0 to at "
                             "most 50, the last being the A/B step (TRENDING_ROLLOUT_RAMP, e.g. '1,5,25,50')")


@dataclass(frozen=True)
class Decision:
    action: str
    phase: str
    percent: float
    reason: str
    evidence: dict = field(default_factory=dict)
    power_plan: dict | None = None


def decide(rollout: experiment_store.Rollout, policy: RolloutPolicy, analysis: Analysis | None = None,
           shadow: dict | None = None, daily_users: float | None = None) -> Decision:
    """What to do with an active rollout given the latest analysis of its current step."""
    hold = Decision(HOLD, rollout.phase, rollout.percent, "waiting for more traffic")
    if rollout.phase == "shadow":
        if not shadow or shadow["requests"] < policy.shadow_min_requests:
            seen = shadow["requests"] if shadow else 0
            return Decision(HOLD, "shadow", 0.0, f"shadow has {seen} of {policy.shadow_min_requests} requests")
        problems = []
        if shadow["error_rate"] > policy.shadow_max_error_rate:
            problems.append(f"error rate {shadow['error_rate']:.3f} > {policy.shadow_max_error_rate}")
        if shadow["latency_p99_ms"] > policy.shadow_max_p99_ms:
            problems.append(f"p99 latency {shadow['latency_p99_ms']:.1f} ms > {policy.shadow_max_p99_ms} ms")
        if problems:
            return Decision(ROLLBACK, "rolled_back", 0.0, "shadow failed: " + "; ".join(problems), shadow)
        return Decision(ADVANCE, "canary", policy.ramp[0],
                        f"shadow passed on {shadow['requests']} requests (agreement {shadow['agreement']:.2f}, "
                        f"p99 {shadow['latency_p99_ms']:.1f} ms); canary at {policy.ramp[0]:g}%", shadow)
    if analysis is None:
        return hold
    evidence = analysis.summary()
    if analysis.breaches:
        return Decision(ROLLBACK, "rolled_back", 0.0, "guardrail breached at "
                        f"{rollout.percent:g}%: " + "; ".join(analysis.breaches), evidence)
    if rollout.phase == "canary":
        users = analysis.users[analysis.treatment]
        if users < policy.min_users_per_step:
            return Decision(HOLD, "canary", rollout.percent, f"{users} of {policy.min_users_per_step} challenger "
                            f"users at {rollout.percent:g}%")
        following = [p for p in policy.ramp if p > rollout.percent]
        if following[0] == policy.ramp[-1]:
            plan = power_plan(analysis, policy, daily_users)
            return Decision(ADVANCE, "ab", following[0], f"guardrails held at {rollout.percent:g}% ({users} users); "
                            f"A/B at {following[0]:g}% needs {plan['planned_users_per_arm']} users per arm "
                            f"(~{plan['expected_days']} days)", evidence, plan)
        return Decision(ADVANCE, "canary", following[0], f"guardrails held at {rollout.percent:g}% ({users} "
                        f"users); ramping to {following[0]:g}%", evidence)
    # the A/B step
    if not analysis.srm.ok:
        return Decision(INVALID, "invalid", 0.0, f"sample ratio mismatch: {analysis.users} against a "
                        f"{rollout.percent:g}% split (chi-squared p={analysis.srm.p_value:.2g} < "
                        f"{analysis.srm.threshold}); the experiment is invalid and decides nothing", evidence)
    primary = analysis.primary
    if primary.improved:
        return Decision(VALIDATE, VALIDATED, 0.0, f"{PRIMARY} {primary.fixed.control_mean:.4f} -> "
                        f"{primary.fixed.treatment_mean:.4f} (diff {primary.sequential.diff:+.4f}, always-valid "
                        f"p={primary.sequential.p_value:.4f}, {analysis.days} day(s)); no guardrail harmed, SRM ok",
                        evidence)
    if primary.harmed:
        return Decision(REJECT, "rejected", 0.0, f"{PRIMARY} worse in the challenger (diff "
                        f"{primary.sequential.diff:+.4f}, always-valid p={primary.sequential.p_value:.4f})", evidence)
    planned = policy.max_ab_users_per_arm or rollout.planned_users_per_arm
    if (planned and min(analysis.users.values()) >= planned) or analysis.days >= policy.max_ab_days:
        return Decision(REJECT, "rejected", 0.0, f"no significant change in {PRIMARY} after "
                        f"{min(analysis.users.values())} users per arm and {analysis.days} day(s) (planned {planned} "
                        f"users, at most {policy.max_ab_days} days; always-valid p={primary.sequential.p_value:.3f}); "
                        "the champion stays", evidence)
    return Decision(HOLD, "ab", rollout.percent, f"A/B: {analysis.users} users, {PRIMARY} always-valid "
                    f"p={primary.sequential.p_value:.3f}, planned {planned} per arm", evidence)


def power_plan(analysis: Analysis, policy: RolloutPolicy, daily_users: float | None) -> dict:
    """Users per arm the A/B step needs to see the planned MDE on the primary metric, from the canary's control
    arm (its mean and spread), and how many days that takes at the observed traffic."""
    control = analysis.primary.fixed
    sd = max(analysis.primary_sd, 1e-6)
    n = ab_stats.required_sample_size(control.control_mean, policy.mde, policy.alpha, policy.power, kind="mean",
                                      sd=sd)
    days = ab_stats.expected_duration_days(n, daily_users, 1.0) if daily_users else None
    return {"planned_users_per_arm": int(n), "expected_days": days, "baseline": control.control_mean, "sd": sd,
            "mde": policy.mde, "alpha": policy.alpha, "power": policy.power}


def apply(con: duckdb.DuckDBPyConnection, rollout: experiment_store.Rollout, decision: Decision, actor: str,
          watermark: datetime | None) -> experiment_store.Rollout:
    """Record the decision; a validated challenger with ``approval: auto`` is promoted in the same call."""
    if decision.action == HOLD:
        return rollout
    if decision.action == VALIDATE:
        champion = registry.list_aliases(con).get(CHAMPION)
        if champion != rollout.champion_version:  # the control arm was not the champion the test started with
            return experiment_store.move(con, rollout, "invalid", 0.0, actor, f"the champion changed from "
                                         f"{rollout.champion_version} to {champion} during the experiment; its "
                                         "verdict does not hold against the new champion")
        registry.set_alias(con, VALIDATED, rollout.challenger_version, actor, decision.reason)
        phase = "awaiting_approval" if rollout.approval == "manual" else VALIDATED
        moved = experiment_store.move(con, rollout, phase, 0.0, actor, decision.reason, decision.evidence)
        return promote(con, moved, actor, "approval: auto; " + decision.reason) if phase == VALIDATED else moved
    if decision.action == ROLLBACK and registry.list_aliases(con).get(CHALLENGER) == rollout.challenger_version:
        registry.set_alias(con, CHALLENGER, None, actor, f"rolled back: {decision.reason}")
    return experiment_store.move(con, rollout, decision.phase, decision.percent, actor, decision.reason,
                                 decision.evidence, watermark=watermark, plan=decision.power_plan)


def promote(con: duckdb.DuckDBPyConnection, rollout: experiment_store.Rollout, actor: str,
            reason: str) -> experiment_store.Rollout:
    """Make the validated challenger the champion (compare-and-set on the champion it was tested against)."""
    if registry.list_aliases(con).get(VALIDATED) != rollout.challenger_version:
        raise ValueError(f"{rollout.challenger_version} is not production-validated (its experiment is "
                         f"{rollout.phase}); only a version that won its A/B test can be promoted")
    champion = registry.list_aliases(con).get(CHAMPION)
    if champion != rollout.champion_version:
        raise ValueError(f"{rollout.challenger_version} won against {rollout.champion_version}, but the champion is "
                         f"now {champion}; it needs a new experiment against {champion} before it can be promoted")
    version = registry.get(con, rollout.challenger_version)
    if version.stage == "staging":
        registry.set_stage(con, version.version_id, "production", actor, reason)
    registry.set_alias(con, CHAMPION, version.version_id, actor, reason, expected=rollout.champion_version)
    if registry.list_aliases(con).get(CHALLENGER) == version.version_id:
        registry.set_alias(con, CHALLENGER, None, actor, f"promoted to champion: {reason}")
    return experiment_store.move(con, rollout, "promoted", 100.0, actor, reason)


def approve(con: duckdb.DuckDBPyConnection, version_id: str, actor: str, reason: str) -> experiment_store.Rollout:
    """A person's approval of a production-validated version waiting for it (``approval: manual``)."""
    waiting = [r for r in experiment_store.list_rollouts(con) if r.challenger_version == version_id]
    if not waiting or waiting[-1].phase != "awaiting_approval":
        phases = ", ".join(f"{r.experiment_id}: {r.phase}" for r in waiting) or "no experiment"
        raise ValueError(f"{version_id} is not awaiting approval ({phases}); only a challenger that won its A/B "
                         "test under approval: manual can be approved")
    return promote(con, waiting[-1], actor, f"approved: {reason}")


def rollback_champion(con: duckdb.DuckDBPyConnection, actor: str, reason: str) -> registry.AliasMove:
    """Point the champion back where it was before its latest move (``ml.alias_history``)."""
    if CHAMPION not in registry.list_aliases(con):
        raise ValueError("there is no champion, so no previous version to roll back to")
    current = registry.resolve_alias(con, CHAMPION)
    target = registry.rollback_target(con, CHAMPION)
    if target is None:
        raise ValueError(f"the champion {current.version_id if current else None} has no previous version in "
                         "ml.alias_history to roll back to")
    return registry.set_alias(con, CHAMPION, target, actor, f"rollback: {reason}",
                              expected=current.version_id if current else None)


def plan_for(con: duckdb.DuckDBPyConnection, holdout: deployment_plan.Holdout | None = None
             ) -> deployment_plan.DeploymentPlan | None:
    """The deployment plan the registry and the active rollout imply (None before the first champion)."""
    champion = registry.resolve_alias(con, CHAMPION) if CHAMPION in registry.list_aliases(con) else None
    if champion is None:
        return None
    active = experiment_store.list_rollouts(con, active_only=True)
    rollout = active[-1] if active else None
    routed = {champion.version_id}
    shadows, canary = (), None
    if rollout is not None and rollout.phase == "shadow":
        shadows = (rollout.challenger_version,)
    elif rollout is not None and rollout.percent > 0:
        canary = deployment_plan.Canary(rollout.experiment_id, rollout.challenger_version, rollout.percent,
                                        rollout.salt)
    routed |= set(shadows) | ({canary.version_id} if canary else set())
    models = {}
    for version_id in sorted(routed):
        version = registry.get(con, version_id)
        models[version_id] = deployment_plan.ModelRef(version_id, version.family, version.artifact_path,
                                                      version.artifact_sha256)
    tests = tuple(test.plan_experiment() for test in [*ab_tests.running(con), *ranking_tests.running(con),
                                                      *ranking_bandits.running(con)])
    return deployment_plan.build(champion.version_id, models, shadows=shadows, canary=canary, experiments=tests,
                                 holdout=holdout, ranker=ranker_candidates.production(con))


def publish_plan(con: duckdb.DuckDBPyConnection, path: Path) -> deployment_plan.DeploymentPlan | None:
    """Build the plan from the current state and publish it atomically (None, nothing written, before a champion)."""
    plan = plan_for(con)
    if plan is not None:
        deployment_plan.publish(plan, path)
    return plan

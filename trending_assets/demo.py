"""`trending demo`: weeks of a simulated world landing one week at a time, with the real daemon deciding by itself
when to retrain.

The first weeks land together and the volume trigger trains the first champion. Each later week lands, the
landing sensor ingests it, dbt builds, the drift report and performance monitor run, and the retrain sensors
answer what they see (new labeled movies, a failed drift or performance check). The world's weeks pass in
minutes, so at each week's end the demo ticks the real ``weekly_retrain_schedule`` as if its cron had fired then,
instead of waiting for Monday. Every request and its answer is in ``ml.retraining_log``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from trending_assets import headless
from trending_assets.defs.retraining.requests import LOG_ID_TAG
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator import simulate


@dataclass(frozen=True)
class DemoPlan:
    weeks: int = 6
    bootstrap_weeks: int = 2
    drift_week: int = 5  # the drift starts on this week's first day (1-based)
    scenario: str = "vocabulary_drift"
    seed: int = 0
    noise: float = 0.002
    movies_per_day: int = 120
    families: str = "xgboost"
    min_new_labeled: int = 1200
    cooldown_hours: float = 0.0
    step_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if not 1 <= self.bootstrap_weeks < self.weeks:
            raise ValueError(f"--bootstrap-weeks must be at least 1 and fewer than --weeks ({self.weeks}); "
                             f"got {self.bootstrap_weeks}")
        if not 1 <= self.drift_week <= self.weeks:
            raise ValueError(f"--drift-week must be between 1 and --weeks ({self.weeks}); got {self.drift_week}")

    def start(self, today: date) -> date:
        """The first world day: the world ends yesterday, so every day has a partition."""
        return today - timedelta(days=7 * self.weeks)


def policy_environment(plan: DemoPlan) -> dict[str, str]:
    """The retrain policy the daemon (and this process) reads from the environment."""
    return {"TRENDING_RETRAIN_FAMILIES": plan.families, "TRENDING_RETRAIN_MIN_NEW": str(plan.min_new_labeled),
            "TRENDING_RETRAIN_COOLDOWN_HOURS": str(plan.cooldown_hours)}


def run(plan: DemoPlan, home: TrendingHome, echo: Callable[[str], None] = print) -> None:
    os.environ.update(policy_environment(plan))  # the daemon and the policy resource read them
    start = plan.start(datetime.now(UTC).date())
    drift_start = start + timedelta(days=7 * (plan.drift_week - 1))
    echo(f"world: {plan.weeks} weeks from {start}, scenario {plan.scenario} (drift from {drift_start}); retrain "
         f"policy: families {plan.families}, volume trigger at {plan.min_new_labeled} new labeled movies, cooldown "
         f"{plan.cooldown_hours:g} h (production default 24 h; here weeks pass in minutes)")
    defs = headless.load_definitions()
    instance = dg.DagsterInstance.get()
    daemon = headless.start_daemon(home)
    landed: list[str] = []
    try:
        for week in range(plan.bootstrap_weeks, plan.weeks + 1):
            first = start if week == plan.bootstrap_weeks else start + timedelta(days=7 * (week - 1))
            last = start + timedelta(days=7 * week - 1)
            days = (last - first).days + 1
            simulate(home, first, days, scenario=plan.scenario, seed=plan.seed, noise=plan.noise,
                     drift_start=drift_start, movies_per_day=plan.movies_per_day)
            landed += headless.days_between(first, last)
            drifted = " (drifted)" if last >= drift_start else ""
            echo(f"[week {week}/{plan.weeks}] landed {first} .. {last}{drifted}; the daemon ingests, builds, "
                 "monitors and answers the retrain triggers")
            _settle(landed, plan, daemon, echo)
            due = _next_tick(last)
            answer = headless.tick_schedule(defs, instance, due)
            if isinstance(answer, dg.RunRequest):
                echo(f"  weekly_retrain_schedule ticked as of {due:%a %Y-%m-%d %H:%M}: retrain (ml.retraining_log "
                     f"#{answer.tags[LOG_ID_TAG]})")
                run_id, outcome = headless.execute_retrain(defs, instance, answer)
                echo(f"  scheduled retrain run {run_id[:8]}: {outcome}")
                _settle(landed, plan, daemon, echo)
            else:
                echo(f"  weekly_retrain_schedule ticked as of {due:%a %Y-%m-%d %H:%M}: {answer.skip_message}")
    finally:
        headless.stop_daemon(daemon)
    echo(f"done; stopped the daemon and its runs (process group {daemon.pid})\n")


def _settle(landed: list[str], plan: DemoPlan, daemon, echo: Callable[[str], None]) -> None:
    state = headless.wait_for_automation(landed, plan.step_timeout_s, daemon, echo=lambda line: None)
    echo(f"  settled: runs {state['runs']}, held back by gates {state['held_back_runs']}, failed "
         f"{state['failed_runs']}")
    if state["failed_runs"]:
        raise RuntimeError(f"{state['failed_runs']} run(s) failed; see `make dev` (Runs) or the daemon log")


def _next_tick(last_day: date) -> datetime:
    """The schedule's tick for a world week: 06:00 UTC the morning after its last day."""
    return datetime.combine(last_day + timedelta(days=1), time(6), tzinfo=UTC)

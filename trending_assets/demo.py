"""`trending demo`: weeks of a simulated world landing one week at a time, with the real daemon deciding by itself
when to retrain; then day-by-day production testing of the challenger it staged, and of a deliberately bad one.

The first weeks land together and the volume trigger trains the first champion. Each later week lands, the
landing sensor ingests it, dbt builds, the drift report and performance monitor run, and the retrain sensors
answer what they see (new labeled movies, a failed drift or performance check). The world's weeks pass in
minutes, so at each week's end the demo ticks the real ``weekly_retrain_schedule`` as if its cron had fired then,
instead of waiting for Monday. Every request and its answer is in ``ml.retraining_log``.

Then the world goes on one day at a time with API traffic (``demo_rollout``): the staged challenger is shadowed,
ramped as a canary, A/B tested at 50% and promoted or rejected by ``rollout_sensor``; then a challenger trained
on shuffled genres is staged and must be rolled back by the canary's guardrails; finally two days of the
``/trending`` ranker: a team-draft interleaving test and a bandit (with its off-policy gate) between the popularity
and the personalised ranker. The retrain cooldown goes to 24 hours for those days (the daemon restarts), so a late
drift alarm does not retrain in the middle of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from trending_assets import demo_rollout, headless
from trending_assets.defs.retraining.requests import LOG_ID_TAG
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator import simulate


@dataclass(frozen=True)
class DemoPlan:
    weeks: int = 4
    bootstrap_weeks: int = 2
    drift_week: int = 3  # the drift starts on this week's first day (1-based)
    scenario: str = "new_genre"
    seed: int = 0
    noise: float = 0.002
    movies_per_day: int = 120
    families: str = "xgboost"
    min_new_labeled: int = 1200
    cooldown_hours: float = 0.0
    step_timeout_s: float = 900.0
    production_days: int = 8  # days of API traffic for the staged challenger's rollout
    bad_days: int = 6  # days for the deliberately bad challenger to be rolled back
    ranker_days: int = 2  # days for the ranker experiments (an interleaving test and a bandit), after the rollouts
    traffic_users: int = 6000
    approval: str = "auto"
    max_ab_days: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.bootstrap_weeks < self.weeks:
            raise ValueError(f"--bootstrap-weeks must be at least 1 and fewer than --weeks ({self.weeks}); "
                             f"got {self.bootstrap_weeks}")
        if not 1 <= self.drift_week <= self.weeks:
            raise ValueError(f"--drift-week must be between 1 and --weeks ({self.weeks}); got {self.drift_week}")

    def start(self, today: date) -> date:
        """The first world day: the world (weeks, then production days) ends by yesterday, so every day has a
        partition."""
        return today - timedelta(days=7 * self.weeks + self.production_days + self.bad_days + self.ranker_days)


def policy_environment(plan: DemoPlan) -> dict[str, str]:
    """The retrain and rollout policies the daemon (and this process) read from the environment."""
    return {"TRENDING_RETRAIN_FAMILIES": plan.families, "TRENDING_RETRAIN_MIN_NEW": str(plan.min_new_labeled),
            "TRENDING_RETRAIN_COOLDOWN_HOURS": str(plan.cooldown_hours), "TRENDING_APPROVAL": plan.approval,
            "TRENDING_ROLLOUT_MAX_AB_DAYS": str(plan.max_ab_days)}


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
        if plan.production_days or plan.bad_days or plan.ranker_days:
            # restarted here, not inside: the `finally` below must stop whichever daemon is running
            headless.stop_daemon(daemon)
            os.environ["TRENDING_RETRAIN_COOLDOWN_HOURS"] = "24"
            daemon = headless.start_daemon(home)
            _production_testing(plan, home, daemon, last + timedelta(days=1), landed, echo)
    finally:
        headless.stop_daemon(daemon)
    echo(f"done; stopped the daemon and its runs (process group {daemon.pid})\n")


def _production_testing(plan: DemoPlan, home: TrendingHome, daemon, first: date, landed: list[str],
                        echo: Callable[[str], None]) -> None:
    echo(f"\nproduction testing from {first}: {plan.traffic_users} simulated users browse the API each day (70% "
         f"visit); rollout_sensor moves the challenger through shadow, canary and A/B (approval: {plan.approval}); "
         "retrain cooldown now 24 h")
    demo_rollout.start_vibe_test(home, echo)
    traffic_days: list[str] = []
    day = demo_rollout.production_days(plan, home, first, plan.production_days, daemon, landed, traffic_days,
                                       demo_rollout.first_decision, echo)
    if plan.bad_days:
        echo("\nsecond scenario: a bad challenger")
        bad = demo_rollout.stage_bad_challenger(home, echo)
        day = demo_rollout.production_days(plan, home, day, plan.bad_days, daemon, landed, traffic_days,
                                           demo_rollout.decided(bad), echo)
    if plan.ranker_days:
        # after the rollouts, not beside them: every visitor in a ranker experiment changes what the model A/B
        # measures (run beside it, the A/B needed 9048 users per arm instead of 2090 and ended undecided)
        echo("\nthird scenario: the /trending ranker")
        demo_rollout.start_ranking_test(home, echo)
        demo_rollout.production_days(plan, home, day, plan.ranker_days, daemon, landed, traffic_days,
                                     lambda rollouts: False, echo)


def _settle(landed: list[str], plan: DemoPlan, daemon, echo: Callable[[str], None]) -> None:
    state = headless.wait_for_automation(landed, plan.step_timeout_s, daemon, echo=lambda line: None)
    echo(f"  settled: runs {state['runs']}, held back by gates {state['held_back_runs']}, failed "
         f"{state['failed_runs']}")
    if state["failed_runs"]:
        raise RuntimeError(f"{state['failed_runs']} run(s) failed; see `make dev` (Runs) or the daemon log")


def _next_tick(last_day: date) -> datetime:
    """The schedule's tick for a world week: 06:00 UTC the morning after its last day."""
    return datetime.combine(last_day + timedelta(days=1), time(6), tzinfo=UTC)

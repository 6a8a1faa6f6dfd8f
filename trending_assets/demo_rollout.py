"""The demo's production-testing days: one day at a time, the simulated audience browses the serving API
(in-process router, the published plan), and the daemon ingests the traffic, analyses it and lets
``rollout_sensor`` move the rollout: shadow -> canary 1/5/25% -> A/B at 50% -> promote, or roll back.

Only API traffic lands on these days, no new world day: the catalog stays the last world week's trending list.
A new world day would rebuild every movie mart and monitor behind it (two minutes more per day on two cores) and
tell the experiment nothing.

``stage_bad_challenger`` makes the second scenario: a model trained on shuffled genres, staged as challenger
directly (as if a broken build slipped past the offline gates), which the canary's guardrails must catch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import polars as pl

from trending_assets import headless, traffic
from trending_assets.lib import experiment_store, registry, rollout, rollout_control, training, warehouse, window_store
from trending_assets.lib.home import TrendingHome

ACTOR = "demo:bad-challenger"
ACTOR_RANKER = "demo:ranker-candidate"
DECIDED = ("promoted", "rejected", "rolled_back", "invalid", "awaiting_approval")


def production_days(plan, home: TrendingHome, first: date, days: int, daemon, landed: list[str],
                    traffic_days: list[str], until: Callable[[list[experiment_store.Rollout]], bool],
                    echo: Callable[[str], None]) -> date:
    """Day by day from ``first`` until ``until(rollouts)`` holds or ``days`` ran out; returns the next day."""
    seen, verdicts, rankers = _history_id(home), _decided_tests(home), set()
    day = first
    for _ in range(days):
        for line in _traffic(home, day, plan.traffic_users, plan.seed):
            echo(f"[{day}] {line}")
        traffic_days.append(day.isoformat())
        headless.wait_for_automation(landed, plan.step_timeout_s, daemon, echo=lambda line: None,
                                     feedback_days=traffic_days)
        seen = _print_moves(home, seen, echo)
        _print_verdicts(home, verdicts, echo)
        _print_bandits(home, echo)
        _print_policy_layer(home, echo)
        _print_rankers(home, rankers, echo)
        day += timedelta(days=1)
        if until(_rollouts(home)):
            break
    return day


def _traffic(home: TrendingHome, day: date, users: int, seed: int) -> list[str]:
    lines: list[str] = []
    if not home.deployment_plan.exists():
        return [f"no deployment plan yet: no API traffic on {day}"]
    traffic.run_days(home, day, 1, users=users, seed=seed, echo=lines.append)
    return lines


def start_vibe_test(home: TrendingHome, echo: Callable[[str], None]) -> None:
    """The second seed scenario beside the rollout: two vibe-tag prompt variants A/B tested on click-through."""
    from trending_assets.lib import ab_tests

    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        started = experiment_store.watermark(con)
        spread = ab_tests.pre_period_spread(con, started)
        test = ab_tests.start(con, "vibe-tags", "vibe_tags", ["genre_moods_v2", "moods_v1"], started, mde=0.01,
                              baseline=spread[0] if spread else 0.1, sd=spread[1] if spread else None)
        rollout.publish_plan(con, home.deployment_plan)
    echo(f"A/B test {test.experiment_id}: vibe tags by genre_moods_v2 (control) vs moods_v1, 50/50 by user, "
         f"independent of the model rollout (its own salt); sized for +0.01 click-through: "
         f"{test.planned_users_per_arm} users per arm")


def start_ranking_test(home: TrendingHome, echo: Callable[[str], None]) -> None:
    """The third scenario: the personalised ranker (genre_taste) interleaved with popularity in /trending, a bandit
    over the same rankers, and the genre-threshold policy layer over the champion's probabilities."""
    from trending_assets.lib import policy_layer_store, ranker_candidates, ranking_bandits

    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        ranker_candidates.propose(con, "genre_taste", ACTOR_RANKER, "personalised by each user's genre taste",
                                  allocation_percent=50.0)
    echo("proposed ranker candidate genre_taste (`trending ranker propose genre_taste`); waiting for "
         "ranker_candidate_sensor to start its test against the production ranker")
    test = _wait_for_ranker_test(home, "genre_taste")
    with warehouse.connect(home.warehouse) as con:
        bandit = ranking_bandits.start(con, "ranker-bandit", ["popularity", "genre_taste"],
                                       experiment_store.watermark(con), floor=0.1, warmup=200)
        rollout.publish_plan(con, home.deployment_plan)
        version, genres, baseline = policy_layer_store.champion_genres(con)
        layer = policy_layer_store.start(con, version, genres, baseline, experiment_store.watermark(con),
                                         actor="demo")
    policy_layer_store.publish(layer, home.genre_thresholds)
    echo(f"ranker_candidate_sensor started interleaving test {test.experiment_id} (half the visitors): team-draft "
         f"lists from {test.ranker_a} (A) and {test.ranker_b} (B); each click credits the ranker that placed the "
         f"movie; decided on an always-valid sign test once {test.min_users} users prefer one (genre_taste reads the "
         "profiles serving/user_profiles builds from earlier clicks)")
    echo(f"bandit {bandit.experiment_id} (the other half): Thompson sampling between the same rankers on clicks, "
         f"{bandit.floor:.0%} floor; each day the off-policy gate asks whether always serving one ranker beats the "
         "logged mix")
    echo(f"policy layer {layer.layer_id} over {version}'s probabilities: each of {len(genres)} genres draws its tag "
         f"threshold from {layer.thresholds} per user and day (Thompson sampling on label accuracy, "
         f"{layer.floor:.0%} floor); serving/genre_thresholds learns after each day and checks the learned threshold "
         f"off-policy against the model's own {baseline:g}")


def _wait_for_ranker_test(home: TrendingHome, ranker: str, timeout_s: float = 120.0):
    """The candidate's interleaving test, once ranker_candidate_sensor (every 10 s) has started it."""
    from trending_assets.lib import ranking_tests

    test = _wait_for(home, lambda con: next((t for t in ranking_tests.running(con) if t.ranker_b == ranker), None),
                     timeout_s)
    if test is not None:
        return test
    raise TimeoutError(f"ranker_candidate_sensor did not start a test of {ranker} within {timeout_s:.0f} s; is the "
                       "daemon running?")


def _print_rankers(home: TrendingHome, printed: set[str], echo: Callable[[str], None]) -> None:
    """Ranker candidates promoted or rejected since the last look."""
    from trending_assets.lib import ranker_candidates

    with warehouse.connect(home.warehouse) as con:
        rankers = ranker_candidates.all_rankers(con)
    for r in rankers:
        if r.status in ("production", "rejected") and r.ranker not in printed and r.verdict:
            echo(f"  ranker {r.ranker}: {r.status} (ranker_candidate_sensor: {r.verdict})")
            printed.add(r.ranker)


def stage_bad_challenger(home: TrendingHome, echo: Callable[[str], None]) -> str:
    """Train XGBoost on the labeled movies with their genres shuffled, register and stage it as challenger."""
    from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless

    with warehouse.connect(home.warehouse) as con:
        movies = window_store.labeled_movies(con).filter(pl.col("genres").is_not_null())
        champion = training.champion(con)
    shuffled = movies.with_columns(pl.col("genres").shuffle(seed=7))
    model = train_stateless(shuffled, XGBConfig(n_rounds=30))
    folder = training.artifact_dir(home.models, "xgboost")
    model.save(folder)
    reason = "demo: a deliberately bad challenger (trained on shuffled genres), staged past the offline gates"
    with warehouse.connect(home.warehouse) as con:
        # one rollout runs at a time: a challenger retrained meanwhile would keep the bad one waiting for days
        if experiment_store.list_rollouts(con, active_only=True):
            echo("  " + rollout_control.rollback(con, "canary", "the demo's second scenario stages a bad challenger "
                                                 "in its place", ACTOR))
        version = registry.register(con, "xgboost", folder, "stateless", reason, None, champion.window_id, "demo-bad",
                                    {"n_rounds": 30, "labels": "shuffled"}, {"train_rows": shuffled.height})
        registry.set_stage(con, version.version_id, "staging", ACTOR, reason)
        registry.set_alias(con, rollout.CHALLENGER, version.version_id, ACTOR, reason)
    echo(f"staged {version.version_id} as challenger: {reason}")
    _wait_for_rollout(home, version.version_id)
    return version.version_id


def _wait_for_rollout(home: TrendingHome, version_id: str, timeout_s: float = 120.0) -> None:
    """Until rollout_sensor (every 10 s) has started the challenger's shadow, so the next day's traffic shadows it."""
    _wait_for(home, lambda con: experiment_store.get(con, f"rollout-{version_id}"), timeout_s)


def _wait_for(home: TrendingHome, find: Callable, timeout_s: float):
    """What ``find(con)`` returns once it is not None (a sensor's doing), polled every 2 s; None after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with warehouse.connect(home.warehouse) as con:
            found = find(con)
        if found is not None:
            return found
        time.sleep(2)
    return None


def decided(version: str) -> Callable[[list[experiment_store.Rollout]], bool]:
    return lambda rollouts: any(r.challenger_version == version and r.phase in DECIDED for r in rollouts)


def first_decision(rollouts: list[experiment_store.Rollout]) -> bool:
    return any(r.phase in DECIDED for r in rollouts)


def _rollouts(home: TrendingHome) -> list[experiment_store.Rollout]:
    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        return experiment_store.list_rollouts(con)


def _history_id(home: TrendingHome) -> int:
    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        return con.execute("SELECT coalesce(max(id), 0) FROM experiments.phase_history").fetchall()[0][0]


ENDED_TESTS = ("SELECT experiment_id, status, verdict FROM experiments.ab_tests WHERE status != 'running' UNION ALL "
               "SELECT experiment_id, status, verdict FROM experiments.ranking_tests WHERE status != 'running'")


def _decided_tests(home: TrendingHome) -> set[str]:
    from trending_assets.lib import ab_tests, ranking_tests

    with warehouse.connect(home.warehouse) as con:
        ab_tests.ensure_schema(con)
        ranking_tests.ensure_schema(con)
        return {row[0] for row in con.execute(ENDED_TESTS).fetchall()}


def _print_verdicts(home: TrendingHome, printed: set[str], echo: Callable[[str], None]) -> None:
    """A/B and interleaving tests of a serving surface decided since the last look, with the interleaving
    test's power analysis."""
    with warehouse.connect(home.warehouse) as con:
        rows = con.execute(ENDED_TESTS).fetchall()
        needed = dict(con.execute("SELECT experiment_id, arg_max(required_users, analysed_at) "
                                  "FROM experiments.interleaving_results GROUP BY 1").fetchall())
    for experiment_id, status, verdict in rows:
        if experiment_id not in printed:
            power = (f"; at this gap 80% power needs {needed[experiment_id]} users"
                     if needed.get(experiment_id) else "")
            echo(f"  {experiment_id}: {status}: {verdict}{power}")
            printed.add(experiment_id)


def _print_bandits(home: TrendingHome, echo: Callable[[str], None]) -> None:
    """Each running bandit's newest analysis: weights, and the off-policy value of always serving each ranker."""
    from trending_assets.lib import ranking_bandits

    with warehouse.connect(home.warehouse) as con:
        ranking_bandits.ensure_schema(con)
        rows = con.execute(
            "SELECT r.experiment_id, arm, requests, click_rate, next_weight, dr, dr_low, dr_high, logged_value, "
            "gate_passed FROM experiments.bandit_results r JOIN (SELECT experiment_id, max(analysed_at) AS newest "
            "FROM experiments.bandit_results GROUP BY 1) n ON r.experiment_id = n.experiment_id AND "
            "r.analysed_at = n.newest ORDER BY 1, 2").fetchall()
    for experiment_id, arm, requests, rate, weight, dr, low, high, logged, passed in rows:
        echo(f"  {experiment_id}: {arm} {requests} requests, click rate {rate or 0:.3f}, next weight {weight:.0%}; "
             f"always {arm}: DR {dr:.3f} [{low:.3f}, {high:.3f}] vs logged {logged:.3f}: "
             f"{'OPE gate passed' if passed else 'not proven better'}")


def _print_policy_layer(home: TrendingHome, echo: Callable[[str], None]) -> None:
    """The running policy layer's newest analysis: the genres whose learned threshold left the model's, with OPE."""
    from trending_assets.lib import policy_layer_store

    with warehouse.connect(home.warehouse) as con:
        policy_layer_store.ensure_schema(con)
        layer = policy_layer_store.get(con)
        if layer is None or layer.status != "running":
            return
        lines = policy_layer_store.history_lines(con, layer, moved_only=True)
        analysed = con.execute("SELECT count(DISTINCT genre), max(decisions) FROM experiments.policy_layer_history "
                               "WHERE layer_id = ? AND event = 'learned' AND analysed_at = (SELECT max(analysed_at) "
                               "FROM experiments.policy_layer_history WHERE layer_id = ?)",
                               [layer.layer_id, layer.layer_id]).fetchall()[0]
    if not analysed[0]:
        return
    echo(f"  {layer.layer_id}: {len(lines)} of {analysed[0]} genres moved from the model's threshold "
         f"{layer.baseline:g} ({analysed[1]} labelled requests per genre)")
    for line in lines:
        echo(f"    {line}")


def _print_moves(home: TrendingHome, seen: int, echo: Callable[[str], None]) -> int:
    with warehouse.connect(home.warehouse) as con:
        rows = con.execute("SELECT id, experiment_id, from_phase, to_phase, to_percent, actor, reason FROM "
                           "experiments.phase_history WHERE id > ? ORDER BY id", [seen]).fetchall()
    for id_, experiment_id, from_phase, to_phase, percent, actor, reason in rows:
        step = f"{to_phase} {percent:g}%" if to_phase in ("canary", "ab") else to_phase
        echo(f"  {experiment_id}: {from_phase or 'new'} -> {step} ({actor}): {reason[:220]}")
        seen = id_
    return seen

"""What ``rollout_sensor`` does each tick, as one Dagster-free function so tests and the CLI share it.

Order matters: a requested rollback first (a person or the API asked), then the champion's own guardrail, then a
new challenger, then the newest analysis' proposal (applied only if the rollout is still where it was analysed).
Every move is written to ``experiments.phase_history`` and/or ``ml.alias_history``; the plan is republished once
at the end when anything moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from trending_assets.lib import deployment_plan, experiment_store, registry, rollout
from trending_assets.lib.home import TrendingHome


def tick(con: duckdb.DuckDBPyConnection, home: TrendingHome, policy: rollout.RolloutPolicy, actor: str,
         proposal: dict | None = None, champion_failure: str | None = None
         ) -> tuple[list[str], deployment_plan.DeploymentPlan | None]:
    """Apply what is due; returns a line per move and the published plan (None when nothing moved)."""
    experiment_store.ensure_schema(con)
    moved: list[str] = []
    for request in pending_requests(home):
        try:
            moved.append(rollback(con, request["target"], f"{request['reason']} (API request "
                                  f"{request['request_id']})", "api:admin"))
        except ValueError as error:  # nothing to undo: the request is answered, not retried forever
            moved.append(f"rollback request {request['request_id']} refused: {error}")
        _done(home, request)
    if champion_failure:
        line = champion_guardrail(con, actor, champion_failure)
        if line:
            moved.append(line)
    line = start_for_challenger(con, policy, actor)
    if line:
        moved.append(line)
    if proposal:
        line = apply_proposal(con, proposal, actor)
        if line:
            moved.append(line)
    if not moved:
        line = stale_plan(con, home)
        if line:
            moved.append(line)
    plan = rollout.publish_plan(con, home.deployment_plan) if moved else None
    return moved, plan


def stale_plan(con: duckdb.DuckDBPyConnection, home: TrendingHome) -> str | None:
    """Why the published plan no longer matches the registry (the first champion was staged, a plan file was
    removed or damaged), or None when it does."""
    wanted = rollout.plan_for(con)
    if wanted is None:
        return None
    try:
        published = deployment_plan.read(home.deployment_plan)
    except deployment_plan.PlanError as error:
        return f"plan republished: {error}"
    if published.plan_id != wanted.plan_id:
        return f"plan republished: champion {wanted.champion} (the published plan {published.plan_id} was out of date)"
    return None


def start_for_challenger(con: duckdb.DuckDBPyConnection, policy: rollout.RolloutPolicy, actor: str) -> str | None:
    """A shadow rollout for a staged challenger that has none yet. One rollout runs at a time: a challenger staged
    meanwhile waits, and starts when the running one is decided if it still holds the alias."""
    aliases = registry.list_aliases(con)
    challenger, champion = aliases.get(rollout.CHALLENGER), aliases.get(rollout.CHAMPION)
    if challenger is None or champion is None or challenger == champion:
        return None
    if experiment_store.get(con, f"rollout-{challenger}") is not None:
        return None
    if experiment_store.list_rollouts(con, active_only=True):
        return None
    started = experiment_store.create(con, champion, challenger, policy.approval, actor,
                                      f"{challenger} staged as challenger; shadowing {champion}",
                                      experiment_store.watermark(con) or _epoch())
    return f"{started.experiment_id}: shadow {challenger} beside champion {champion}"


def apply_proposal(con: duckdb.DuckDBPyConnection, proposal: dict, actor: str) -> str | None:
    """Carry out an analysis' decision if its rollout is still at the analysed phase and percent."""
    if proposal.get("action", rollout.HOLD) == rollout.HOLD:
        return None
    current = experiment_store.get(con, proposal["experiment_id"])
    if current is None or (current.phase, current.percent) != (proposal["phase"], proposal["percent"]):
        return None  # it moved since (a rollback, a newer challenger): the analysis is stale
    decision = rollout.Decision(proposal["action"], proposal["to_phase"], proposal["to_percent"],
                                proposal["reason"], {}, proposal.get("power_plan"))
    after = rollout.apply(con, current, decision, actor, experiment_store.watermark(con))
    return f"{current.experiment_id}: {current.phase} {current.percent:g}% -> {after.phase} {after.percent:g}% " \
           f"({decision.reason})"


def champion_guardrail(con: duckdb.DuckDBPyConnection, actor: str, failure: str) -> str | None:
    """Roll the champion back when its performance check failed and it came from a rollout's promotion."""
    champion = registry.list_aliases(con).get(rollout.CHAMPION)
    promoted = [r for r in experiment_store.list_rollouts(con) if r.challenger_version == champion
                and r.phase == "promoted"]
    if not promoted:
        return None  # not a promotion this platform can undo (the first champion): retraining answers it
    move = rollout.rollback_champion(con, actor, f"guardrail on the promoted champion: {failure}")
    experiment_store.move(con, promoted[-1], "rolled_back", 0.0, actor, f"champion guardrail breached: {failure}")
    end_stale_rollouts(con, actor)
    return f"champion rolled back {move.from_version} -> {move.to_version}: {failure}"


def end_stale_rollouts(con: duckdb.DuckDBPyConnection, actor: str) -> None:
    """An active rollout measured against a champion that is no longer champion proves nothing: invalid."""
    champion = registry.list_aliases(con).get(rollout.CHAMPION)
    for active in experiment_store.list_rollouts(con, active_only=True):
        if active.champion_version != champion:
            experiment_store.move(con, active, "invalid", 0.0, actor, f"the champion changed from "
                                  f"{active.champion_version} to {champion} during the experiment")


def rollback(con: duckdb.DuckDBPyConnection, target: str, reason: str, actor: str) -> str:
    """Roll back the active rollout's challenger (``canary``) or the champion; ValueError if nothing to undo."""
    if target == "champion":
        move = rollout.rollback_champion(con, actor, reason)
        for promoted in experiment_store.list_rollouts(con):
            if promoted.challenger_version == move.from_version and promoted.phase == "promoted":
                experiment_store.move(con, promoted, "rolled_back", 0.0, actor, reason)
        end_stale_rollouts(con, actor)
        return f"champion rolled back {move.from_version} -> {move.to_version}: {reason}"
    if target != "canary":
        raise ValueError(f"rollback target {target!r} must be 'canary' or 'champion'")
    active = experiment_store.list_rollouts(con, active_only=True)
    if not active:
        raise ValueError("no active rollout to roll back; use --target champion to roll back the champion")
    current = active[-1]
    rollout.apply(con, current, rollout.Decision(rollout.ROLLBACK, "rolled_back", 0.0, reason), actor, None)
    return f"{current.experiment_id}: {current.phase} {current.percent:g}% -> rolled_back ({reason})"


def pending_requests(home: TrendingHome) -> list[dict]:
    """Rollback requests the API's admin endpoint left, oldest first (unreadable ones are set aside)."""
    folder = home.serving_requests
    requests = []
    for path in sorted(folder.glob("rollback-*.json")) if folder.is_dir() else []:
        try:
            body = json.loads(path.read_text())
            if not isinstance(body, dict) or not {"request_id", "target", "reason"} <= body.keys():
                raise ValueError("a rollback request needs request_id, target and reason")
            requests.append({**body, "path": str(path)})
        except (OSError, ValueError):  # JSONDecodeError is a ValueError
            path.rename(path.with_suffix(".unreadable"))
    return requests


def _done(home: TrendingHome, request: dict) -> None:
    done = home.serving_requests / "done"
    done.mkdir(parents=True, exist_ok=True)
    Path(request["path"]).replace(done / Path(request["path"]).name)


def _epoch():
    from datetime import datetime

    return datetime(1970, 1, 1)

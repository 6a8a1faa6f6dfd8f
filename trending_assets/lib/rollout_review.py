"""One review of the active rollout's current step: read its traffic, analyse it, decide, record the analysis.

The ``experiments/rollout_analysis`` asset runs this after every feedback update; ``rollout_sensor`` applies the
decision it returns (``rollout.apply``) after checking the rollout has not moved since.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from trending_assets.lib import experiment_analysis, experiment_store, rollout
from trending_assets.lib.experiment_analysis import PRIMARY, Analysis


@dataclass(frozen=True)
class Review:
    rollout: experiment_store.Rollout
    decision: rollout.Decision
    analysis: Analysis | None = None
    shadow: dict | None = None

    def summary(self) -> dict:
        """What the sensor needs to apply the decision, and what a person reads first."""
        d = self.decision
        return {"experiment_id": self.rollout.experiment_id, "phase": self.rollout.phase,
                "percent": self.rollout.percent, "action": d.action, "to_phase": d.phase, "to_percent": d.percent,
                "reason": d.reason, "power_plan": d.power_plan}


def review(con: duckdb.DuckDBPyConnection, current: experiment_store.Rollout, policy: rollout.RolloutPolicy,
           config: experiment_analysis.AnalysisConfig = experiment_analysis.AnalysisConfig()) -> Review:
    """Analyse the current step's traffic (events after its watermark) and decide; the analysis is saved."""
    since = current.step_started_at
    if current.phase == "shadow":
        shadows = experiment_analysis.shadow_report(
            experiment_store.load_shadow_events(con, current.challenger_version, since))
        shadow = shadows[0] if shadows else None
        experiment_store.save_analysis(con, current, [], {}, shadows)
        return Review(current, rollout.decide(current, policy, shadow=shadow), shadow=shadow)
    events = experiment_store.load_events(con, current.experiment_id, since)
    if events.filter(pl.col("event_type") == "exposure").is_empty():
        return Review(current, rollout.Decision(rollout.HOLD, current.phase, current.percent,
                                                f"no traffic yet at {current.percent:g}%"))
    analysis = experiment_analysis.analyse(
        current.experiment_id, "canary", current.percent / 100, events, experiment_store.load_labels(con),
        experiment_store.load_pre_period(con, since), experiment_store.load_latencies(con, current.experiment_id, since),
        experiment_store.load_corrections(con, current.experiment_id, since), config)
    daily = sum(analysis.users.values()) / max(analysis.days, 1)
    decision = rollout.decide(current, policy, analysis=analysis, daily_users=daily)
    experiment_store.save_analysis(con, current, experiment_analysis.as_rows(analysis), analysis.srm.as_dict(), [])
    return Review(current, decision, analysis=analysis)


def primary_history(con: duckdb.DuckDBPyConnection, experiment_id: str) -> pl.DataFrame:
    """Every analysis of the primary metric so far (for the effect-over-time plot)."""
    return con.sql("SELECT * FROM experiments.results WHERE experiment_id = ? AND metric = ? ORDER BY analysed_at",
                   params=[experiment_id, PRIMARY]).pl()

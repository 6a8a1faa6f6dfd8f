"""``retrain_job``: a fresh training window, then for each family train (hybrid policy), evaluate, gate, stage.

Every trigger (schedule, volume, drift, performance, manual) launches this one job; its run tags say which
trigger asked, why, and which ``ml.retraining_log`` entry records it.
"""

import dagster as dg

from trending_assets.lib.genre_model import FAMILIES

TRAINING_WINDOW = dg.AssetKey(["ml", "training_window"])


def family_assets(family: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(["ml", f"{family}_{step}"]) for step in ("candidate", "evaluation", "staging")]


def retrain_selection(families: list[str]) -> list[dg.AssetKey]:
    """The assets a retrain of ``families`` materializes (their gates come along as checks)."""
    return [TRAINING_WINDOW] + [key for family in families for key in family_assets(family)]


retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(*retrain_selection(list(FAMILIES))),
    description="Retrain: build a fresh training window, train each family with the hybrid policy, evaluate "
    "against the champion, run the blocking gates, stage what passes. Launched by weekly_retrain_schedule, "
    "volume_retrain_sensor, drift_retrain_sensor, performance_retrain_sensor, or a person (`trending retrain "
    "--reason ...` or the Launchpad, with a trending/reason tag).",
)

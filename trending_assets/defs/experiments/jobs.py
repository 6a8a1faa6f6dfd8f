"""People's hands on a rollout: ``approve_job`` (promote a production-validated challenger waiting for approval)
and ``rollback_job`` (undo the canary or the champion). Both take config in the Launchpad, write the move with
the person's name to ``ml.alias_history`` / ``experiments.phase_history``, and publish the new plan. The CLI's
``trending approve`` and ``trending rollback`` do the same."""

from typing import Literal

import dagster as dg

from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import rollout, rollout_control


class ApproveConfig(dg.Config):
    version: str  # e.g. xgboost-v5: the challenger waiting in awaiting_approval
    reason: str
    approver: str  # who approves; recorded as person:<approver>


class RollbackConfig(dg.Config):
    reason: str
    actor: str  # who asks; recorded as person:<actor>
    target: Literal["canary", "champion"] = "canary"


@dg.op(pool=WAREHOUSE_POOL)
def approve_promotion(context: dg.OpExecutionContext, config: ApproveConfig, warehouse: WarehouseResource) -> None:
    with warehouse.connect() as con:
        after = rollout.approve(con, config.version, f"person:{config.approver}", config.reason)
        plan = rollout.publish_plan(con, warehouse.home.deployment_plan)
    context.log.info(f"{config.approver} approved {config.version}: {after.experiment_id} is {after.phase}; plan "
                     f"{plan.plan_id if plan else None} published")


@dg.op(pool=WAREHOUSE_POOL)
def roll_back(context: dg.OpExecutionContext, config: RollbackConfig, warehouse: WarehouseResource) -> None:
    with warehouse.connect() as con:
        line = rollout_control.rollback(con, config.target, config.reason, f"person:{config.actor}")
        plan = rollout.publish_plan(con, warehouse.home.deployment_plan)
    context.log.info(f"{line}; plan {plan.plan_id if plan else None} published")


@dg.job(description="Approve a production-validated challenger (approval: manual): it becomes champion; the "
        "approver and reason go to ml.alias_history.")
def approve_job():
    approve_promotion()


@dg.job(description="Roll back the active canary, or the champion to its previous version (ml.alias_history), "
        "with a reason; publishes the new deployment plan.")
def rollback_job():
    roll_back()

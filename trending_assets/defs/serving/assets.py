"""What the serving API reads, published as files: ``serving/catalog`` (the movies ``/trending`` ranks) and
``serving/deployment_plan`` (which model serves whom). The API hot-reloads both and never opens the warehouse."""

import json

import dagster as dg

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import experiment_store, rollout, serving_catalog
from trending_assets.lib.reports import markdown_table

CATALOG = dg.AssetKey(["serving", "catalog"])
PLAN = dg.AssetKey(["serving", "deployment_plan"])
PROFILES = dg.AssetKey(["serving", "user_profiles"])


@dg.asset(
    key=CATALOG, deps=[dg.AssetKey(["marts", "dim_movies"])], group_name="serving", kinds={"duckdb", "parquet"},
    automation_condition=on_upstream_update(),
    description="The newest movies (first seen in the last 14 days of data), most popular first, without labels: "
    "what GET /trending ranks. Written atomically to serving/catalog.parquet.",
)
def catalog(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        frame = serving_catalog.build(con)
    path = serving_catalog.publish(frame, warehouse.home.serving_catalog)
    context.log.info(f"serving catalog: {frame.height} movies -> {path}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": frame.height, "path": dg.MetadataValue.path(str(path)),
        "preview": dg.MetadataValue.md(markdown_table(frame.select("movie_id", "title", "popularity",
                                                                   "first_seen_date").head(10)))})


@dg.asset(
    key=PROFILES, deps=[dg.AssetKey(["marts", "fct_feedback_events"])], group_name="serving",
    kinds={"duckdb", "parquet"}, automation_condition=on_upstream_update(),
    description="Each user's genre profile (user_id, genre, weight) from the genres shown on the movies they clicked "
    "in the last 28 days: what personalised /trending rankers (genre_taste) read. Written atomically to "
    "serving/user_profiles.parquet.",
)
def user_profiles(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        frame = serving_catalog.build_profiles(con)
    path = serving_catalog.publish(frame, warehouse.home.user_profiles)
    users = frame["user_id"].n_unique()
    context.log.info(f"user profiles: {users} users -> {path}")
    return dg.MaterializeResult(metadata={
        "users": users, "dagster/row_count": frame.height, "path": dg.MetadataValue.path(str(path)),
        "preview": dg.MetadataValue.md(markdown_table(frame.head(10), "{:.3f}"))})


@dg.asset(
    key=PLAN, group_name="serving", kinds={"duckdb", "json"},
    description="The deployment plan: the champion, the rollout's shadow or canary (percent and salt), every routed "
    "model's artifact and sha256. Built from ml.model_aliases and experiments.rollouts, published atomically to "
    "serving/plan.json. rollout_sensor materializes it whenever a rollout or alias moves.",
)
def deployment_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        experiment_store.ensure_schema(con)
        plan = rollout.publish_plan(con, warehouse.home.deployment_plan)
    if plan is None:
        context.log.info("no champion yet: no deployment plan to publish")
        return dg.MaterializeResult(metadata={"champion": "none"})
    context.log.info(f"deployment plan {plan.plan_id}: champion {plan.champion}, canary "
                     f"{plan.canary.version_id + f' at {plan.canary.percent:g}%' if plan.canary else 'none'}, "
                     f"shadows {', '.join(plan.shadows) or 'none'}")
    return dg.MaterializeResult(metadata={
        "plan_id": plan.plan_id, "champion": plan.champion,
        "canary": f"{plan.canary.version_id} at {plan.canary.percent:g}%" if plan.canary else "none",
        "shadows": ", ".join(plan.shadows) or "none",
        "path": dg.MetadataValue.path(str(warehouse.home.deployment_plan)),
        "plan": dg.MetadataValue.json(json.loads(json.dumps(plan.to_dict()))),
    })


deployment_job = dg.define_asset_job(
    "deployment_job", selection=[PLAN],
    description="Publish the deployment plan (rollout_sensor launches it after every rollout step, promotion or "
    "rollback; the sensor has already written the same plan so the API switches within one tick).")

"""The production-testing loop in one process, every hop real except the daemon: a bad challenger is staged, the
simulated audience browses the router on the published plan, the event log lands in the landing zone, ingestion
and dbt carry it to the marts, rollout_analysis judges the step and rollout_sensor moves the rollout — until the
canary's guardrails roll the challenger back. (The daemon-driven version of the same loop is `make demo`.)
"""

from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest
from dagster_dbt import DbtCliResource

from trending_assets import traffic
from trending_assets.defs.dbt.assets import trending_dbt
from trending_assets.defs.dbt.resources import DBT_EXECUTABLE, dbt_project
from trending_assets.defs.experiments.assets import rollout_analysis
from trending_assets.defs.experiments.resources import RolloutSettings
from trending_assets.defs.experiments.sensors import rollout_sensor
from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.serving.assets import catalog
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import deployment_plan, experiment_store, registry, training, window_store
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator import simulate
from trending_assets.lib.warehouse import connect
from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless

START = date(2026, 3, 2)
WORLD_DAYS = 6
RANGE = "dagster/asset_partition_range_{}"


def land_days(world, first: date, last: date) -> None:
    home, instance, resources = world
    tags = {RANGE.format("start"): first.isoformat(), RANGE.format("end"): last.isoformat()}
    assert dg.materialize(raw_assets, resources=resources, instance=instance, tags=tags).success
    assert dg.materialize([trending_dbt], resources=resources, instance=instance).success


def register(con, home: TrendingHome, frame: pl.DataFrame, reason: str, window_id: str) -> str:
    model = train_stateless(frame, XGBConfig(n_rounds=30, nthread=1))
    folder = training.artifact_dir(home.models, "xgboost")
    model.save(folder)
    version = registry.register(con, "xgboost", folder, "stateless", reason, None, window_id, "test", {}, {})
    registry.set_stage(con, version.version_id, "staging", "test:setup", reason)
    return version.version_id


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = TrendingHome(tmp_path_factory.mktemp("loop") / "home").ensure()
    resources = {"warehouse": WarehouseResource(home_dir=str(home.root)),
                 "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
                 "rollout_settings": RolloutSettings(approval="auto", ramp="5,50", min_users_per_step=20,
                                                     shadow_min_requests=100, mde=0.004)}
    instance = dg.DagsterInstance.ephemeral()
    world = (home, instance, resources)
    simulate(home, START, WORLD_DAYS, scenario="stable", seed=5, movies_per_day=80, users=30)
    land_days(world, START, START + timedelta(days=WORLD_DAYS - 1))
    with connect(home.warehouse) as con:
        movies = window_store.labeled_movies(con).filter(pl.col("genres").is_not_null())
        champion = register(con, home, movies, "the champion", "w-test")
        registry.set_alias(con, "champion", champion, "test:setup", "first champion")
        bad = register(con, home, movies.with_columns(pl.col("genres").shuffle(seed=7)),
                       "trained on shuffled genres", "w-test")
        registry.set_alias(con, "challenger", bad, "test:setup", "a bad build past the offline gates")
    assert dg.materialize([catalog], resources=resources, instance=instance).success
    return world


def tick(world, cursor):
    home, instance, resources = world
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "warehouse": resources["warehouse"], "rollout_settings": resources["rollout_settings"]})
    return rollout_sensor(context), context.cursor


def traffic_day(world, day: date) -> None:
    """A day of the audience on the published plan, landed, ingested, built and analysed."""
    home, instance, resources = world
    traffic.run_days(home, day, 1, users=3000, seed=1, echo=lambda line: None)
    land_days(world, day, day)
    assert dg.materialize([rollout_analysis], resources=resources, instance=instance).success


def test_a_bad_challenger_is_shadowed_put_on_canary_and_rolled_back_by_its_guardrails(world):
    home, instance, resources = world
    started, cursor = tick(world, None)
    assert isinstance(started, dg.RunRequest) and "shadow xgboost-v2" in started.tags["trending/rollout"]
    plan = deployment_plan.read(home.deployment_plan)
    assert plan.champion == "xgboost-v1" and plan.shadows == ("xgboost-v2",) and plan.canary is None

    day = START + timedelta(days=WORLD_DAYS)
    traffic_day(world, day)
    canary, cursor = tick(world, cursor)
    assert isinstance(canary, dg.RunRequest), canary
    plan = deployment_plan.read(home.deployment_plan)
    assert plan.canary is not None and plan.canary.version_id == "xgboost-v2" and plan.canary.percent == 5

    for offset in (1, 2, 3):  # the canary's users show the harm within a day or two
        traffic_day(world, day + timedelta(days=offset))
        outcome, cursor = tick(world, cursor)
        with connect(home.warehouse) as con:
            rollout = experiment_store.get(con, "rollout-xgboost-v2")
        if rollout.phase != "canary":
            break
    assert rollout.phase == "rolled_back", rollout
    assert "guardrail breached" in rollout.decision_reason
    assert isinstance(outcome, dg.RunRequest)
    plan = deployment_plan.read(home.deployment_plan)
    assert plan.canary is None and plan.champion == "xgboost-v1"  # the rollback is live within the tick
    with connect(home.warehouse) as con:
        assert "challenger" not in registry.list_aliases(con)
        history = experiment_store.history(con, "rollout-xgboost-v2")
        harmed = con.execute("SELECT metric FROM experiments.results WHERE experiment_id = 'rollout-xgboost-v2' "
                             "AND harmed").fetchall()
    assert history["to_phase"].to_list() == ["shadow", "canary", "rolled_back"]
    assert set(history["actor"].to_list()[1:]) == {"sensor:rollout_sensor"}
    assert harmed, "the breach is recorded metric by metric in experiments.results"

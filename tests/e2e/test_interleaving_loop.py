"""Experiments on the /trending rankers in one process, every hop real except the daemon: the audience browses the
router and its clicks build the user profiles the personalised ranker reads. Then genre_taste is proposed as a ranker
candidate: ranker_candidate_sensor starts its team-draft test against popularity, interleaving_analysis decides it
from a day of the event log (ingested, built by dbt), and the sensor makes it the production ranker;
a bandit between the same rankers, whose weights and off-policy gate come from ranking_bandit; and the
genre-threshold policy layer, learned by serving/genre_thresholds from a day of labelled draws, then reset."""

from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest
from dagster_dbt import DbtCliResource

from trending_assets import traffic
from trending_assets.defs.dbt.assets import trending_dbt
from trending_assets.defs.dbt.resources import DBT_EXECUTABLE, dbt_project
from trending_assets.defs.experiments.ranker_sensor import ranker_candidate_sensor
from trending_assets.defs.experiments.ranking import interleaving_analysis, ranking_bandit
from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.serving.assets import catalog, deployment_plan, user_profiles
from trending_assets.defs.serving.policy_layer import genre_thresholds
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import deployment_plan as plan_file
from trending_assets.lib import genre_model, policy_layer_learning, policy_layer_store, ranker_candidates
from trending_assets.lib import ranking_bandits
from trending_assets.lib import registry, training
from trending_assets.lib import window_store
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator import simulate
from trending_assets.lib.warehouse import connect
from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless

START = date(2026, 4, 6)
WORLD_DAYS = 5
RANGE = "dagster/asset_partition_range_{}"


def land(world, first: date, last: date) -> None:
    home, instance, resources = world
    tags = {RANGE.format("start"): first.isoformat(), RANGE.format("end"): last.isoformat()}
    assert dg.materialize(raw_assets, resources=resources, instance=instance, tags=tags).success
    assert dg.materialize([trending_dbt], resources=resources, instance=instance).success


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = TrendingHome(tmp_path_factory.mktemp("interleaving") / "home").ensure()
    resources = {"warehouse": WarehouseResource(home_dir=str(home.root)),
                 "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)}
    instance = dg.DagsterInstance.ephemeral()
    world = (home, instance, resources)
    simulate(home, START, WORLD_DAYS, scenario="stable", seed=3, movies_per_day=80, users=30)
    land(world, START, START + timedelta(days=WORLD_DAYS - 1))
    with connect(home.warehouse) as con:
        movies = window_store.labeled_movies(con).filter(pl.col("genres").is_not_null())
        model = train_stateless(movies, XGBConfig(n_rounds=30, nthread=1))
        folder = training.artifact_dir(home.models, "xgboost")
        model.save(folder)
        version = registry.register(con, "xgboost", folder, "stateless", "test", None, "w-test", "test", {}, {})
        registry.set_stage(con, version.version_id, "staging", "test:setup", "the champion")
        registry.set_alias(con, "champion", version.version_id, "test:setup", "first champion")
    assert dg.materialize([catalog, deployment_plan], resources=resources, instance=instance).success
    traffic_day(world, START + timedelta(days=WORLD_DAYS))  # champion-only: the clicks profiles are built from
    assert dg.materialize([user_profiles], resources=resources, instance=instance).success
    return world


def traffic_day(world, day: date) -> None:
    home, instance, resources = world
    traffic.run_days(home, day, 1, users=1500, seed=2, echo=lambda line: None)
    land(world, day, day)


def test_a_proposed_ranker_is_interleaved_by_the_automation_and_promoted_when_users_prefer_it(world):
    home, instance, resources = world
    day = START + timedelta(days=WORLD_DAYS)
    profiles = pl.read_parquet(home.user_profiles)
    assert profiles["user_id"].n_unique() > 500
    assert profiles.group_by("user_id").agg(pl.col("weight").sum())["weight"].is_between(0.999, 1.001).all()

    with connect(home.warehouse) as con:
        ranker_candidates.propose(con, "genre_taste", "test", "personalised lists", allocation_percent=100.0)
    assert "test ranker-genre_taste-vs-popularity started" in tick(world).tags["trending/ranker"]
    plan = plan_file.read(home.deployment_plan)
    assert [(e.experiment_id, e.surface, e.design) for e in plan.experiments] == [
        ("ranker-genre_taste-vs-popularity", "ranking", "team_draft")]
    assert plan.ranker == "popularity"

    traffic_day(world, day + timedelta(days=1))
    with connect(home.warehouse) as con:
        teams = con.execute(
            "SELECT json_extract_string(payload, '$.team') AS team, count(*) FROM marts.fct_feedback_events "
            "WHERE event_type = 'impression' AND occurred_at::DATE = ? GROUP BY 1 ORDER BY 1",
            [day + timedelta(days=1)]).fetchall()
    # every listed movie says which ranker placed it, and the two teams fill the list evenly
    (_, a), (_, b) = teams
    assert [t for t, _ in teams] == ["A", "B"] and abs(a - b) / (a + b) < 0.05

    result = dg.materialize([interleaving_analysis], resources=resources, instance=instance)
    assert result.success
    with connect(home.warehouse) as con:
        row = con.execute("SELECT users, wins_a, wins_b, ties, preference_b, ci_low, p_value, required_users, "
                          "winner FROM experiments.interleaving_results").fetchall()[-1]
        status = con.execute("SELECT status, verdict FROM experiments.ranking_tests").fetchall()
    users, wins_a, wins_b, ties, preference_b, ci_low, p_value, required, winner = row
    assert winner == "genre_taste" and wins_b > wins_a and ci_low > 0.5 and p_value < 0.05, row
    assert users > 500 and required < users  # the observed gap needed fewer users than the test had
    assert status[0][0] == "decided" and "genre_taste beats popularity" in status[0][1]
    assert plan_file.read(home.deployment_plan).experiments == ()  # decided: out of the plan
    request = tick(world)  # the automation promotes the winner: everyone outside experiments gets it
    assert "ranker genre_taste: production" in request.tags["trending/ranker"]
    assert plan_file.read(home.deployment_plan).ranker == "genre_taste"
    assert isinstance(tick(world), dg.SkipReason)  # nothing more to do


def tick(world):
    home, instance, resources = world
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": resources["warehouse"]})
    return ranker_candidate_sensor(context)


def test_a_bandit_moves_traffic_to_the_better_ranker_and_its_logs_prove_it_off_policy(world):
    home, instance, resources = world
    day = START + timedelta(days=WORLD_DAYS + 2)
    with connect(home.warehouse) as con:
        bandit = ranking_bandits.start(con, "ranker-bandit", ["popularity", "genre_taste"], traffic_started(day),
                                       floor=0.2, warmup=100)
    assert dg.materialize([deployment_plan], resources=resources, instance=instance).success
    experiment = plan_file.read(home.deployment_plan).experiment("ranker-bandit")
    assert experiment.design == "bandit" and [v.weight for v in experiment.variants] == [0.5, 0.5]  # warm-up

    traffic_day(world, day + timedelta(days=1))
    result = dg.materialize([ranking_bandit], resources=resources, instance=instance)
    assert result.success
    with connect(home.warehouse) as con:
        logged = ranking_bandits.decisions(con, bandit)
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT arm, requests, click_rate, next_weight, dr_low, logged_value, gate_passed "
            "FROM experiments.bandit_results").fetchall()}
    assert logged["propensity"].unique().to_list() == [0.5]  # what the plan gave each arm, logged per request
    assert rows["genre_taste"][1] > rows["popularity"][1]  # more requests with a click
    assert rows["genre_taste"][2] > 0.5 > rows["popularity"][2] >= 0.1  # traffic moves; the floor holds
    assert rows["genre_taste"][3] > rows["genre_taste"][4] and rows["genre_taste"][5]  # OPE gate passed
    assert not rows["popularity"][5]
    weights = {v.name: v.weight for v in plan_file.read(home.deployment_plan).experiment("ranker-bandit").variants}
    assert weights["genre_taste"] == rows["genre_taste"][2]  # the plan was republished with the new weights


def test_the_policy_layer_learns_thresholds_from_labelled_draws_and_a_reset_from_the_launchpad_forgets(world):
    home, instance, resources = world
    day = START + timedelta(days=WORLD_DAYS + 4)
    with connect(home.warehouse) as con:
        version, genres, baseline = policy_layer_store.champion_genres(con)
        layer = policy_layer_store.start(con, version, genres, baseline, traffic_started(day), warmup=20)
        model = genre_model.load_alias(con, "champion")[1]
    policy_layer_store.publish(layer, home.genre_thresholds)

    traffic_day(world, day + timedelta(days=1))
    with connect(home.warehouse) as con:
        logged = policy_layer_learning.decisions(con, layer)
        shown = con.execute(
            "SELECT i.movie_id, CAST(json_extract(i.payload, '$.genres') AS VARCHAR[]), "
            "CAST(json_extract(e.payload, '$.thresholds') AS DOUBLE[]) FROM marts.fct_feedback_events e "
            "JOIN marts.fct_feedback_events i ON json_extract_string(i.payload, '$.request_id') = "
            "json_extract_string(e.payload, '$.request_id') AND i.event_type = 'impression' "
            "WHERE e.experiment_id = ? LIMIT 400", [layer.layer_id]).fetchall()
    # every champion-served request drew a threshold per genre, uniformly during the warm-up
    assert set(logged["genre"]) == set(genres) and logged.height > 500 * len(genres)
    assert logged["propensity"].unique().to_list() == [pytest.approx(1 / 6)]
    # and each listed movie showed exactly the genres whose probability reached the user's threshold
    frame = pl.read_parquet(home.serving_catalog)
    probs = dict(zip(frame["movie_id"].to_list(), model.predict_proba(frame)))
    for movie, names, thresholds in shown:
        assert set(names) == {g for g, p, t in zip(genres, probs[movie], thresholds) if p >= t}

    result = dg.materialize([genre_thresholds], resources=resources, instance=instance)
    assert result.success
    meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    published = policy_layer_store.read(home.genre_thresholds)
    on_policy = logged.group_by("genre", "threshold").agg(pl.col("reward").mean())
    for genre in genres:
        mine = on_policy.filter(pl.col("genre") == genre)
        best = mine.sort("reward", descending=True)["threshold"][0]
        distribution = dict(zip(published["thresholds"], published["genres"][genre]))
        # the threshold users now draw most is the one that was most accurate in the logs (or ties with it)
        top = max(distribution, key=distribution.get)
        assert mine.filter(pl.col("threshold") == top)["reward"][0] >= mine["reward"].max() - 0.01, (genre, best)
    assert meta["model_version"] == version and meta["state"]["genres"].keys() == set(genres)

    reset = dg.materialize([genre_thresholds], resources=resources, instance=instance, run_config={
        "ops": {"serving__genre_thresholds": {"config": {"reset": True, "reason": "test: forget"}}}})
    assert reset.success
    published = policy_layer_store.read(home.genre_thresholds)
    assert all(p == pytest.approx([1 / 6] * 6) for p in published["genres"].values())
    with connect(home.warehouse) as con:
        lines = policy_layer_store.history_lines(con, policy_layer_store.get(con))
    assert lines[-1].endswith("reset: test: forget")


def traffic_started(day: date):
    from datetime import UTC, datetime, time

    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC).replace(tzinfo=None)

"""The `trending` command end to end: simulate, materialize through Dagster, query — in real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

TRENDING = str(Path(sys.executable).with_name("trending"))


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRENDING_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)  # the CLI derives it from TRENDING_HOME
    result = subprocess.run([TRENDING, *args], env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def materialized(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("cli") / "home"
    run(home, "simulate", "--start", "2026-01-01", "--days", "4", "--noise", "0.01", "--movies-per-day", "40")
    out = run(home, "materialize", "--start", "2026-01-01", "--end", "2026-01-04").stdout
    assert "ingest_job [2026-01-01 .. 2026-01-04]: ok" in out and "build_job: ok" in out and "train_job: ok" in out
    return home


def test_materialize_fills_every_layer_and_records_runs(materialized):
    out = run(materialized, "query", "SELECT count(*) AS n FROM marts.dim_movies", "--format", "csv").stdout
    assert int(out.splitlines()[1]) > 100
    days = run(materialized, "query", "SELECT DISTINCT partition_date FROM raw.movies ORDER BY 1", "--format", "csv")
    assert days.stdout.split() == ["partition_date", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    status = run(materialized, "status").stdout
    assert "raw.movies_rejects" in status and "training" in status
    instance = dg.DagsterInstance.from_config(str(materialized / "dagster"))
    runs = instance.get_run_records(filters=dg.RunsFilter(tags={"trending/trigger": "cli"}))
    # ingest, build, train (a one-day window is too small for a candidate: nothing trains, nothing fails), snapshot
    assert sorted(r.dagster_run.job_name for r in runs) == ["build_job", "build_job", "ingest_job", "train_job"]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def test_select_limits_the_run_to_the_chosen_assets(materialized):
    out = run(materialized, "materialize", "--start", "2026-01-02", "--select", "key:raw/movies").stdout
    assert "ingest_job [2026-01-02 .. 2026-01-02]: ok" in out
    assert "build_job" not in out


def test_analysts_read_the_snapshot_while_a_materialization_writes(materialized):
    query = "SELECT count(*) FROM raw.movies"
    snapshot = materialized / "warehouse_snapshot.duckdb"
    with duckdb.connect(str(snapshot), read_only=True) as con:
        before = con.execute(query).fetchall()[0][0]
    env = {**os.environ, "TRENDING_HOME": str(materialized)}
    env.pop("DAGSTER_HOME", None)
    writer = subprocess.Popen([TRENDING, "materialize", "--start", "2026-01-01", "--end", "2026-01-04"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reads = 0
    while writer.poll() is None:
        with duckdb.connect(str(snapshot), read_only=True) as con:
            assert con.execute(query).fetchall()[0][0] == before
        reads += 1
        time.sleep(0.2)
    _, stderr = writer.communicate()
    assert writer.returncode == 0, stderr[-3000:]
    assert reads > 5  # the reader really overlapped the writer
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute(query).fetchall()[0][0] == before  # re-materializing is idempotent


def test_a_manual_retrain_runs_in_process_and_is_logged_with_its_reason(materialized):
    result = run(materialized, "retrain", "--reason", "new labels from the annotators")
    assert "retrain accepted (ml.retraining_log #1)" in result.stdout
    outcome = re.search(r"retrain_job run (\w{8}): (success|held back)", result.stdout)
    assert outcome, result.stdout
    with duckdb.connect(str(materialized / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT kind, actor, reason, decision, run_id, outcome FROM ml.retraining_log").fetchall()
    assert len(rows) == 1
    kind, actor, reason, decision, run_id, logged = rows[0]
    assert (kind, reason, decision) == ("manual", "new labels from the annotators", "run")
    assert actor.startswith("cli:") and run_id.startswith(outcome.group(1)) and logged == outcome.group(2)
    instance = dg.DagsterInstance.from_config(str(materialized / "dagster"))
    tags = instance.get_run_by_id(run_id).tags
    assert tags["trending/trigger"] == "manual" and tags["trending/reason"] == "new labels from the annotators"


def _champion(home: Path) -> str:
    """A small XGBoost champion on the home's labeled movies (four simulated days are too few for the gates)."""
    import polars as pl

    from trending_assets.lib import registry, training, window_store
    from trending_assets.lib.warehouse import connect
    from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless

    with connect(home / "warehouse.duckdb") as con:
        movies = window_store.labeled_movies(con).filter(pl.col("genres").is_not_null())
        folder = training.artifact_dir(home / "models", "xgboost")
        train_stateless(movies, XGBConfig(n_rounds=20, nthread=1)).save(folder)
        version = registry.register(con, "xgboost", folder, "stateless", "cli test", None, "w-cli", "test", {}, {})
        registry.set_alias(con, "champion", version.version_id, "test:setup", "a champion to serve")
    return version.version_id


def test_serving_from_the_cli_an_ab_test_in_process_traffic_then_real_http(materialized):
    env = {**os.environ, "TRENDING_HOME": str(materialized), "TRENDING_ADMIN_TOKEN": "cli-test-token"}
    env.pop("DAGSTER_HOME", None)
    refused = run(materialized, "simulate-traffic", "--days", "1", check=False)
    assert refused.returncode == 2 and "deployment plan" in refused.stderr  # no plan published yet
    champion = _champion(materialized)
    started = run(materialized, "ab", "start", "--variants", "genre_moods_v2,moods_v1").stdout
    assert "A/B test vibe-tags running on vibe_tags" in started and "users per arm" in started
    traffic = run(materialized, "simulate-traffic", "--days", "1", "--users", "200", "--start", "2026-01-05").stdout
    assert re.search(r"traffic 2026-01-05: \d+ requests from \d+ users \(0 errors\)", traffic), traffic
    feedback = materialized / "landing" / "feedback"
    logged = sorted(feedback.glob("serving_*.jsonl"))
    assert logged and any('"experiment_id":"vibe-tags"' in path.read_text() for path in logged)

    server = subprocess.Popen([TRENDING, "serve", "--port", "8766", "--log-level", "warning"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get("http://127.0.0.1:8766/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read().decode()[-2000:]
                time.sleep(0.5)
        assert health["status"] == "ok" and health["experiments"] == ["vibe-tags"] and health["champion"] == champion
        over_http = run(materialized, "simulate-traffic", "--days", "1", "--users", "30", "--start", "2026-01-06",
                        "--url", "http://127.0.0.1:8766").stdout
        assert "(0 errors)" in over_http
        assert httpx.post("http://127.0.0.1:8766/admin/reload", timeout=5).status_code == 401
    finally:
        os.killpg(server.pid, 2)
        server.wait(timeout=30)
    assert len(sorted(feedback.glob("serving_*.jsonl"))) > len(logged)  # the server published its log on exit
    stopped = run(materialized, "ab", "stop", "vibe-tags", "--reason", "enough").stdout
    assert "stopped vibe-tags" in stopped


@pytest.mark.parametrize(("args", "message"), [
    (["simulate", "--start", "2026-13-01", "--days", "1"], "'2026-13-01' is not a date; use YYYY-MM-DD"),
    (["simulate", "--start", "2026-01-01", "--days", "0"], "0 must be at least 1"),
    (["simulate", "--start", "2026-01-01", "--days", "1", "--scenario", "chaos"], "invalid choice: 'chaos'"),
    (["materialize", "--start", "2026-01-05", "--end", "2026-01-01"], "--end 2026-01-01 is before --start 2026-01-05"),
    (["query", "SELECT 1"], "no warehouse snapshot"),
    (["materialize", "--start", "2026-01-01", "--select", "bogus:::"], "--select 'bogus:::' is not an asset selection"),
    (["materialize", "--start", "2026-01-01", "--select", "group:nothing"], "matches no asset"),
    (["retrain", "--reason", "  "], "a trigger needs a reason"),
    (["simulate-traffic", "--days", "1"], "no simulated world"),
    (["ab", "start", "--variants", "moods_v1,shouty_v9"], "shouty_v9"),
    (["serve", "--port", "0"], "0 must be at least 1"),
    (["rollback", "--reason", "users complain"], "no active rollout to roll back; use --target champion"),
    (["rollback", "--reason", "users complain", "--target", "champion"], "no previous version"),
    (["approve", "xgboost-v1", "--reason", "looks good"], "xgboost-v1 is not awaiting approval"),
    (["interleave", "start", "--rankers", "popularity"], "give exactly two rankers, the incumbent first"),
    (["interleave", "start", "--rankers", "popularity,trendy"], "'trendy' is not a ranker; use one of popularity"),
    (["interleave", "stop", "ranker-test", "--reason", "enough"], "no running interleaving test 'ranker-test'"),
    (["bandit", "start", "--rankers", "popularity,trendy"], "'trendy' not a ranker; use rankers from popularity"),
    (["bandit", "start", "--floor", "0"], "--floor 0.0: give a share in (0, 1)"),
    (["policy-layer", "start"], "no champion yet"),
    (["policy-layer", "start", "--thresholds", "0.5,high"], "--thresholds '0.5,high': give at least two distinct"),
    (["policy-layer", "start", "--thresholds", "0.5,1.5"], "strictly between 0 and 1"),
    (["policy-layer", "reset", "--reason", "drifted"], "'genre-thresholds' is not running; start it with"),
])
def test_cli_errors_name_the_bad_value_and_the_fix(tmp_path, args, message):
    result = run(tmp_path / "empty-home", *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr

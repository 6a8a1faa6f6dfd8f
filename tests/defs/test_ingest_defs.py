"""Raw ingestion assets and their checks, materialized in-process against a temporary TRENDING_HOME."""

import json

import dagster as dg
import pytest

from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.ingest.sensors import landing_sensor

MOVIES = dg.AssetKey(["raw", "movies"])


def _write_movies(home, name: str, good: int, bad: int, day: str = "2026-01-05") -> None:
    lines = [json.dumps({"movie_id": f"m{i}", "title": "T", "scraped_at": f"{day}T10:00:00Z"}) for i in range(good)]
    lines += [json.dumps({"movie_id": f"b{i}", "title": "T", "scraped_at": f"{day}T10:00:00Z", "popularity": "x"})
              for i in range(bad)]
    (home.landing_dir("movies") / name).write_text("\n".join(lines) + "\n")


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == MOVIES}


@pytest.mark.parametrize(("good", "bad", "passed", "severity"), [
    (20, 0, True, dg.AssetCheckSeverity.WARN),
    (18, 2, False, dg.AssetCheckSeverity.WARN),   # 10% rejected: warn
    (4, 16, False, dg.AssetCheckSeverity.ERROR),  # 80% rejected: error
])
def test_reject_rate_check_severity(home, warehouse_resource, good, bad, passed, severity):
    _write_movies(home, "a.jsonl", good, bad)
    result = dg.materialize(raw_assets, partition_key="2026-01-05", resources={"warehouse": warehouse_resource},
                            selection=[MOVIES], instance=dg.DagsterInstance.ephemeral())
    assert result.success
    checks = _checks(result)
    assert checks["reject_rate"].passed is passed
    assert checks["reject_rate"].severity == severity
    assert checks["reject_rate"].metadata["rejected"].value == bad
    assert checks["schema"].passed and checks["non_empty"].passed
    materialization = result.asset_materializations_for_node("raw_tables")[0]
    assert materialization.metadata["dagster/row_count"].value == good


def test_empty_partition_warns_and_schema_drift_errors(home, warehouse_resource):
    import duckdb

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(raw_assets, partition_key="2026-01-05", resources={"warehouse": warehouse_resource},
                            selection=[MOVIES], instance=instance)
    checks = _checks(result)
    assert not checks["non_empty"].passed and checks["non_empty"].severity == dg.AssetCheckSeverity.WARN
    with duckdb.connect(str(home.warehouse)) as con:
        con.execute("ALTER TABLE raw.movies ADD COLUMN surprise INTEGER")
    checks = _checks(dg.materialize(raw_assets, partition_key="2026-01-05", selection=[MOVIES],
                                    resources={"warehouse": warehouse_resource}, instance=instance))
    assert not checks["schema"].passed
    assert checks["schema"].severity == dg.AssetCheckSeverity.ERROR
    assert "unexpected column surprise" in checks["schema"].metadata["problems"].value


def _tick(instance, warehouse_resource, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": warehouse_resource})
    return landing_sensor(context)


def test_landing_sensor_requests_exactly_the_touched_days_once(home, warehouse_resource):
    instance = dg.DagsterInstance.ephemeral()
    _write_movies(home, "a.jsonl", 3, 0, day="2026-01-05")
    _write_movies(home, "b.jsonl", 3, 0, day="2026-01-06")
    _write_movies(home, "c.jsonl", 3, 0, day="2026-01-09")
    (home.landing_dir("reviews") / "r.jsonl").write_text(
        json.dumps({"review_id": "r1", "movie_id": "m1", "scraped_at": "2026-01-06T00:00:00Z"}) + "\n")

    first = _tick(instance, warehouse_resource)
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"],
               sorted(k.to_user_string() for k in r.asset_selection)) for r in first.run_requests]
    assert ranges == [
        ("2026-01-05", "2026-01-05", ["raw/movies"]),
        ("2026-01-06", "2026-01-06", ["raw/movies", "raw/reviews"]),
        ("2026-01-09", "2026-01-09", ["raw/movies"]),
    ]

    second = _tick(instance, warehouse_resource, first.cursor)
    assert second.run_requests == []  # unchanged files never load twice

    _write_movies(home, "b.jsonl", 4, 0, day="2026-01-06")
    third = _tick(instance, warehouse_resource, second.cursor)
    assert [(r.tags["dagster/asset_partition_range_start"], [k.to_user_string() for k in r.asset_selection])
            for r in third.run_requests] == [("2026-01-06", ["raw/movies"])]
    assert third.run_requests[0].run_key != first.run_requests[1].run_key


def test_a_day_without_a_partition_yet_does_not_hold_back_the_others(home, warehouse_resource, monkeypatch):
    from trending_assets.defs.ingest import sensors

    instance = dg.DagsterInstance.ephemeral()
    _write_movies(home, "today.jsonl", 2, 0, day="2026-01-05")
    _write_movies(home, "tomorrow.jsonl", 2, 0, day="2026-01-06")
    only_today = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-06")
    monkeypatch.setattr(sensors, "daily_partitions", only_today)
    first = _tick(instance, warehouse_resource)
    assert [r.tags["dagster/asset_partition_range_end"] for r in first.run_requests] == ["2026-01-05"]
    assert "movies/tomorrow.jsonl" not in json.loads(first.cursor)["files"]  # retried once its day exists
    monkeypatch.setattr(sensors, "daily_partitions", dg.DailyPartitionsDefinition(start_date="2026-01-01",
                                                                                    end_date="2026-01-07"))
    second = _tick(instance, warehouse_resource, first.cursor)
    assert [r.tags["dagster/asset_partition_range_start"] for r in second.run_requests] == ["2026-01-06"]



def test_a_landed_batch_is_reported_together_and_a_failing_table_holds_back_no_other(home, warehouse_resource):
    import duckdb

    _write_movies(home, "a.jsonl", 3, 0)
    (home.landing_dir("reviews") / "r.jsonl").write_text(
        json.dumps({"review_id": "r1", "movie_id": "m1", "scraped_at": "2026-01-05T08:00:00Z"}) + "\n")
    instance = dg.DagsterInstance.ephemeral()
    first = dg.materialize(raw_assets, partition_key="2026-01-05", resources={"warehouse": warehouse_resource},
                           instance=instance)
    # one step for the batch: downstream automation sees every raw table updated at once, or none
    assert {m.asset_key.to_user_string() for m in first.asset_materializations_for_node("raw_tables")} == {
        "raw/movies", "raw/reviews", "raw/feedback_events"}

    with duckdb.connect(str(home.warehouse)) as con:  # a broken table: raw.reviews is now a view, not loadable
        con.execute("ALTER TABLE raw.reviews RENAME TO reviews_elsewhere")
        con.execute("CREATE VIEW raw.reviews AS SELECT * FROM raw.reviews_elsewhere")
    _write_movies(home, "b.jsonl", 2, 0)
    second = dg.materialize(raw_assets, partition_key="2026-01-05", resources={"warehouse": warehouse_resource},
                            instance=instance, raise_on_error=False)
    assert not second.success
    reported = {e.asset_key.to_user_string() for e in second.get_asset_materialization_events()}
    assert reported == {"raw/movies", "raw/feedback_events"}
    with duckdb.connect(str(home.warehouse)) as con:
        assert con.execute("SELECT count(*) FROM raw.movies").fetchall() == [(5,)]

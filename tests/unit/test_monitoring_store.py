"""The ``monitoring`` schema: drift reports appended as long rows, model performance upserted per day."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from trending_assets.lib import drift, monitoring_store
from trending_assets.lib.drift import LONG_SCHEMA
from trending_assets.lib.performance import PERFORMANCE_SCHEMA
from trending_assets.lib.warehouse import connect, table_exists

FIRST, SECOND = datetime(2026, 2, 1, 6, 0), datetime(2026, 2, 2, 6, 0)
DAY1, DAY2, DAY3 = date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def drift_rows(report_id: str, shift: int = 0) -> pl.DataFrame:
    """Long rows of two signals, as ``DriftReport.long_rows`` gives them (LONG_SCHEMA plus ``signal``)."""
    label = drift.distribution_drift({"action": 60, "drama": 40}, {"action": 60 - shift, "drama": 40 + shift},
                                     "label genres")
    prediction = drift.distribution_drift({"action": 50, "comedy": 50}, {"action": 50, "comedy": 50},
                                          "predicted genres")
    return pl.concat([
        drift.to_long([label], report_id).with_columns(pl.lit("label").alias("signal")),
        drift.to_long([prediction], report_id).with_columns(pl.lit("prediction").alias("signal")),
    ])


def record(con, rows: pl.DataFrame, report_id: str, created_at: datetime, version: str | None = "v1") -> int:
    return monitoring_store.record_drift(
        con, rows, report_id=report_id, created_at=created_at, model_version=version,
        reference_window_id="w1", current_start=DAY2, current_end=DAY3)


def count(con, query: str) -> int:
    return con.execute(query).fetchall()[0][0]


def perf(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA, orient="row")


def test_reading_before_any_table_exists_gives_empty_frames(con):
    assert not table_exists(con, "monitoring", "drift_reports")
    assert monitoring_store.latest_drift(con).is_empty()
    empty = monitoring_store.performance(con)
    assert empty.is_empty()
    assert empty.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert monitoring_store.performance(con, since=DAY1).is_empty()
    # reading created nothing
    assert not table_exists(con, "monitoring", "model_performance")


def test_record_drift_writes_every_long_row_with_the_report_columns(con):
    rows = drift_rows("ignored-id", shift=30)
    written = record(con, rows, "r1", FIRST)

    assert written == rows.height
    stored = con.sql("SELECT * FROM monitoring.drift_reports ORDER BY signal, feature, metric").pl()
    assert stored.height == rows.height
    assert set(stored["report_id"]) == {"r1"}  # the report id given wins over the rows' own
    assert set(stored["created_at"]) == {FIRST}
    assert set(stored["model_version"]) == {"v1"}
    assert set(stored["reference_window_id"]) == {"w1"}
    assert (set(stored["current_start"]), set(stored["current_end"])) == ({DAY2}, {DAY3})
    assert set(stored["signal"]) == {"label", "prediction"}
    # the long columns round-trip unchanged
    columns = [c for c in LONG_SCHEMA if c != "report_id"]
    expected = rows.select("signal", *columns).sort("signal", "feature", "metric")
    assert stored.select("signal", *columns).cast({c: LONG_SCHEMA[c] for c in columns}).equals(
        expected, null_equal=True)
    label_stat = stored.filter((pl.col("signal") == "label") & (pl.col("metric") == "p_value"))
    assert label_stat["drifted"].to_list() == [True]


def test_a_second_report_appends_and_latest_drift_returns_only_the_newest(con):
    record(con, drift_rows("a"), "r1", FIRST)
    record(con, drift_rows("b", shift=30), "r2", SECOND, version=None)

    assert count(con, "SELECT count(DISTINCT report_id) FROM monitoring.drift_reports") == 2
    assert count(con, "SELECT count(*) FROM monitoring.drift_reports") == 2 * drift_rows("a").height
    latest = monitoring_store.latest_drift(con)
    assert set(latest["report_id"]) == {"r2"}
    assert latest.height == drift_rows("b").height
    assert latest["model_version"].to_list() == [None] * latest.height
    # ordered by signal, feature, metric
    keys = list(zip(latest["signal"], latest["feature"], latest["metric"]))
    assert keys == sorted(keys)


def test_latest_drift_goes_by_created_at_not_by_insertion_order(con):
    record(con, drift_rows("b"), "newer", SECOND)
    record(con, drift_rows("a"), "older", FIRST)
    assert set(monitoring_store.latest_drift(con)["report_id"]) == {"newer"}


@pytest.mark.parametrize("dropped", [("signal",), ("value", "n_current")])
def test_drift_rows_missing_columns_are_refused_by_name(con, dropped):
    rows = drift_rows("r").drop(*dropped)
    with pytest.raises(ValueError, match=", ".join(dropped)):
        record(con, rows, "r1", FIRST)
    assert count(con, "SELECT count(*) FROM monitoring.drift_reports") == 0


def test_record_performance_upserts_by_version_day_and_metric(con):
    first = perf(("v1", DAY1, "online_micro_f1", 0.5, 10), ("v1", DAY1, "thumbs_down_rate", 0.2, 40),
                 ("v1", DAY2, "online_micro_f1", 0.6, 12))
    assert monitoring_store.record_performance(con, first, FIRST) == 3

    # late feedback: DAY1's F1 recomputed; a new version and a new day added
    again = perf(("v1", DAY1, "online_micro_f1", 0.7, 15), ("v2", DAY1, "online_micro_f1", 0.9, 3),
                 ("v1", DAY3, "online_micro_f1", 0.4, 5))
    assert monitoring_store.record_performance(con, again, SECOND) == 3

    stored = con.sql("""SELECT model_version, day, metric, value, n, computed_at FROM monitoring.model_performance
                        ORDER BY model_version, day, metric""").fetchall()
    assert stored == [
        ("v1", DAY1, "online_micro_f1", 0.7, 15, SECOND),
        ("v1", DAY1, "thumbs_down_rate", 0.2, 40, FIRST),
        ("v1", DAY2, "online_micro_f1", 0.6, 12, FIRST),
        ("v1", DAY3, "online_micro_f1", 0.4, 5, SECOND),
        ("v2", DAY1, "online_micro_f1", 0.9, 3, SECOND),
    ]


def test_recording_an_empty_frame_writes_nothing(con):
    assert monitoring_store.record_performance(con, pl.DataFrame(schema=PERFORMANCE_SCHEMA), FIRST) == 0
    assert monitoring_store.performance(con).is_empty()


def test_record_performance_takes_only_the_performance_columns_in_any_order(con):
    rows = perf(("v1", DAY1, "click_through", 0.25, 8)).with_columns(pl.lit("x").alias("extra")).select(
        "n", "extra", "value", "metric", "day", "model_version")
    assert monitoring_store.record_performance(con, rows, FIRST) == 1
    assert monitoring_store.performance(con).rows() == [("v1", DAY1, "click_through", 0.25, 8)]


def test_performance_filters_by_since_and_keeps_the_performance_schema(con):
    monitoring_store.record_performance(con, perf(
        ("v2", DAY3, "online_micro_f1", 0.8, 4), ("v1", DAY1, "online_micro_f1", 0.5, 10),
        ("v1", DAY2, "thumbs_down_rate", 0.1, 20), ("v1", DAY2, "online_micro_f1", 0.6, 12)), FIRST)

    every = monitoring_store.performance(con)
    assert every.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert every.select("model_version", "day", "metric").rows() == [
        ("v1", DAY1, "online_micro_f1"), ("v1", DAY2, "online_micro_f1"), ("v1", DAY2, "thumbs_down_rate"),
        ("v2", DAY3, "online_micro_f1")]

    recent = monitoring_store.performance(con, since=DAY2)
    assert recent.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert recent["day"].min() == DAY2
    assert recent.height == 3
    assert monitoring_store.performance(con, since=date(2026, 3, 1)).is_empty()

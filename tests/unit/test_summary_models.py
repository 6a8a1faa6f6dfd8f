"""What ``trending status`` shows of the models (``summary.models``) and how a freshness experiment is kept
(``freshness.record``)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from trending_assets.lib import freshness, registry, summary
from trending_assets.lib.warehouse import connect

NOW = datetime(2024, 4, 1, 12, 0)


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def register(con, folder: Path, family: str, mode: str = "stateless", parent: str | None = None):
    artifact = folder / f"{family}-{len(registry.list_versions(con))}.bin"
    artifact.write_bytes(b"weights")
    return registry.register(con, family, artifact, mode, "test", parent, "w-1", "code-a", {}, {}, NOW)


# -- summary.models ----------------------------------------------------------------------------------------

def test_no_models_without_a_registry(con):
    assert summary.models(con) == []


def test_models_lists_each_version_with_its_aliases_and_static_test_macro_f1(con, tmp_path):
    first = register(con, tmp_path, "xgboost")
    register(con, tmp_path, "xgboost", "stateful", parent=first.version_id)
    register(con, tmp_path, "transformer")
    registry.add_metrics(con, first.version_id, {"static_test_macro_f1": 0.61, "backtest_macro_f1": 0.5})
    registry.set_stage(con, first.version_id, "staging", "job:gates", "passed", NOW)
    registry.set_alias(con, "shadow", "xgboost-v2", "person:test", "watch it", NOW)
    registry.set_alias(con, "champion", first.version_id, "person:test", "first champion", NOW)
    registry.set_alias(con, "challenger", first.version_id, "person:test", "test", NOW)
    registry.set_alias(con, "challenger", None, "person:test", "removed", NOW)  # a removed alias is not shown

    assert summary.models(con) == [
        ("transformer-v1", "candidate", "stateless", None, ""),
        ("xgboost-v1", "staging", "stateless", 0.61, "champion"),
        ("xgboost-v2", "candidate", "stateful", None, "shadow"),
    ]
    registry.set_alias(con, "shadow", first.version_id, "person:test", "moved", NOW)
    assert summary.models(con)[1][4] == "champion, shadow"
    assert "xgboost-v1       staging    stateless macro F1 0.610  champion, shadow" in summary.render(con)


# -- freshness.record --------------------------------------------------------------------------------------

def experiment(macro_f1: float) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"label": "0-30 days old", "start": date(2024, 3, 2), "end": date(2024, 3, 31), "age_days_mid": 15.0,
             "train_rows": 120, "eval_rows": 50, "micro_f1": 0.8, "macro_f1": macro_f1, "status": freshness.OK,
             "seconds": 0.4},
            {"label": "30-60 days old", "start": date(2024, 2, 1), "end": date(2024, 3, 1), "age_days_mid": 45.0,
             "train_rows": 7, "eval_rows": 50, "micro_f1": None, "macro_f1": None,
             "status": freshness.INSUFFICIENT, "seconds": None},
        ],
        schema=freshness.RESULT_SCHEMA,
    )


def test_freshness_record_appends_one_experiment_per_call(con):
    freshness.record(con, experiment(0.7), "w-backtest-1", NOW)
    freshness.record(con, experiment(0.75), "w-backtest-2", datetime(2024, 4, 2))

    rows = con.sql("SELECT * FROM ml.freshness_experiments ORDER BY run_at, age_days_mid").pl()

    assert rows.height == 4
    assert rows.row(0, named=True) == {
        "run_at": NOW, "eval_window_id": "w-backtest-1", "label": "0-30 days old", "start_date": date(2024, 3, 2),
        "end_date": date(2024, 3, 31), "age_days_mid": 15.0, "train_rows": 120, "eval_rows": 50, "micro_f1": 0.8,
        "macro_f1": 0.7, "status": "ok", "seconds": 0.4,
    }
    assert rows.row(1, named=True)["status"] == "insufficient data" and rows.row(1, named=True)["macro_f1"] is None
    assert rows.filter(pl.col("eval_window_id") == "w-backtest-2")["macro_f1"].to_list() == [0.75, None]

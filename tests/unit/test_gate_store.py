"""``ml.gate_results``: every verdict is kept, and ``latest`` answers "what do the gates say about this version now"."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from trending_assets.lib.gate_store import Verdict, latest, record, stronger_first_candidate
from trending_assets.lib.warehouse import connect

MORNING = datetime(2024, 4, 1, 9, 0)
LATER = MORNING + timedelta(hours=3)


def verdict(version_id: str, gate: str, passed: bool, at: datetime, **metadata) -> Verdict:
    return Verdict(version_id, gate, passed, f"{gate} {'passed' if passed else 'failed'}", "baseline:prevalence",
                   metadata, at)


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def test_a_version_never_judged_has_no_verdicts(con):
    assert latest(con, "xgboost-v1") == []


def test_latest_is_the_newest_verdict_of_each_gate_for_that_version_only(con):
    record(con, [
        verdict("xgboost-v1", "non_inferior_macro_f1", False, MORNING, low=-0.02),
        verdict("xgboost-v1", "artifact_loads_and_predicts", True, MORNING),
        verdict("xgboost-v2", "non_inferior_macro_f1", False, LATER + timedelta(hours=1)),
    ])
    record(con, [verdict("xgboost-v1", "non_inferior_macro_f1", True, LATER, low=0.01, genres=["action"])])

    verdicts = latest(con, "xgboost-v1")

    assert [(v.gate, v.passed, v.evaluated_at) for v in verdicts] == [
        ("artifact_loads_and_predicts", True, MORNING),
        ("non_inferior_macro_f1", True, LATER),
    ]
    assert verdicts[1] == verdict("xgboost-v1", "non_inferior_macro_f1", True, LATER, low=0.01, genres=["action"])
    assert con.execute("SELECT count(*) FROM ml.gate_results").fetchall()[0][0] == 4  # older verdicts stay


def test_a_batch_is_recorded_whole_or_not_at_all(con):
    broken = Verdict("xgboost-v1", "no_genre_collapse", True, None, None, {}, MORNING)  # summary is required
    with pytest.raises(duckdb.ConstraintException):
        record(con, [verdict("xgboost-v1", "artifact_loads_and_predicts", True, MORNING), broken])
    assert latest(con, "xgboost-v1") == []


def registered(con, tmp_path: Path, family: str, macro_f1: float) -> str:
    from trending_assets.lib import registry

    artifact = tmp_path / f"{family}.bin"
    artifact.write_bytes(family.encode())
    version = registry.register(con, family, artifact, "stateless", "first", None, "w1", "c1", {}, {})
    registry.add_metrics(con, version.version_id, {"static_test_macro_f1": macro_f1})
    return version.version_id


def passed_all(version_id: str, reference: str = "baseline:prevalence") -> list[Verdict]:
    return [Verdict(version_id, gate, True, "passed", reference, {}, MORNING)
            for gate in ("artifact_loads_and_predicts", "non_inferior_macro_f1", "no_genre_collapse")]


def test_the_stronger_of_two_first_round_candidates_goes_first(con, tmp_path):
    weak = registered(con, tmp_path, "transformer", 0.74)
    strong = registered(con, tmp_path, "xgboost", 0.93)
    record(con, passed_all(weak) + passed_all(strong))

    assert stronger_first_candidate(con, weak, "baseline:prevalence") == (strong, 0.93, 0.74)
    assert stronger_first_candidate(con, strong, "baseline:prevalence") is None


def test_a_rival_that_failed_a_gate_or_was_judged_against_a_champion_does_not_count(con, tmp_path):
    weak = registered(con, tmp_path, "transformer", 0.74)
    failed = registered(con, tmp_path, "xgboost", 0.93)
    judged_later = registered(con, tmp_path, "xgboost", 0.95)
    record(con, passed_all(weak) + passed_all(judged_later, reference="xgboost-v9"))
    record(con, [v if v.gate != "no_genre_collapse" else Verdict(v.version_id, v.gate, False, "collapsed",
                                                                  v.reference, {}, v.evaluated_at)
                 for v in passed_all(failed)])

    assert stronger_first_candidate(con, weak, "baseline:prevalence") is None

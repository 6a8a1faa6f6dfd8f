"""Model registry: versions and their numbering, stages, aliases and their history, artifact checksums, and
concurrent writers (threads sharing a connection, processes sharing the file)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from trending_assets.lib import registry
from trending_assets.lib.registry import (
    ArtifactError,
    UnknownAliasError,
    UnknownVersionError,
    alias_history,
    resolve_alias,
    rollback_target,
    set_alias,
    set_stage,
)
from trending_assets.lib.warehouse import connect

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2024, 4, 1, 12, 0)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture()
def con(db: Path):
    with connect(db) as connection:
        yield connection


def write_artifact(folder: Path, name: str, content: bytes = b"model bytes") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def register(con, folder: Path, family: str = "xgboost", **overrides) -> registry.ModelVersion:
    """A version with plausible defaults; each call writes its own artifact file."""
    artifact = overrides.pop("artifact", None) or write_artifact(
        folder, f"artifacts/{family}-{uuid.uuid4().hex}.bin", os.urandom(64)
    )
    arguments = dict(
        family=family, artifact_dir_or_path=artifact, training_mode="stateless", training_reason="scheduled",
        parent_version=None, window_id="a1b2c3d4e5f6a7b8c9d0", code_version="abc1234",
        hyperparameters={"max_depth": 6, "eta": 0.1}, metrics={"macro_f1": 0.61}, now=NOW,
    )
    return registry.register(con, **{**arguments, **overrides})


# -- versions ----------------------------------------------------------------------------------------------

def test_register_get_and_list(con, tmp_path):
    artifact = write_artifact(tmp_path, "model.json", b"{\"trees\": []}")
    first = register(con, tmp_path, artifact=artifact, notes="first try")
    second = register(con, tmp_path, training_mode="stateful", parent_version=first.version_id,
                      training_reason="drift on comedy")
    transformer = register(con, tmp_path, family="transformer")

    assert first.version_id == "xgboost-v1" and first.stage == "candidate" and first.created_at == NOW
    assert first.artifact_sha256 == hashlib.sha256(b"{\"trees\": []}").hexdigest()
    assert first.artifact_path == str(artifact.resolve())
    assert registry.get(con, "xgboost-v1") == first
    assert registry.get(con, "xgboost-v2").parent_version == "xgboost-v1"
    assert registry.get(con, "xgboost-v2").hyperparameters == {"eta": 0.1, "max_depth": 6}
    assert registry.list_versions(con) == [transformer, first, second]
    assert registry.list_versions(con, family="xgboost") == [first, second]
    assert registry.list_versions(con, family="lightgbm") == []


def test_version_numbers_count_per_family(con, tmp_path):
    ids = [register(con, tmp_path, family=family).version_id
           for family in ("xgboost", "transformer", "xgboost", "xgboost", "transformer")]
    assert ids == ["xgboost-v1", "transformer-v1", "xgboost-v2", "xgboost-v3", "transformer-v2"]


def test_reads_on_a_fresh_database_do_not_need_the_tables(con):
    assert registry.list_versions(con) == [] and registry.list_aliases(con) == {} and alias_history(con) == []
    with pytest.raises(UnknownVersionError, match="'xgboost-v1'; no model is registered yet"):
        registry.get(con, "xgboost-v1")


def test_register_rejects_bad_input_with_the_fix(con, tmp_path):
    register(con, tmp_path, family="transformer")
    with pytest.raises(ValueError, match="family 'XGBoost' is not a valid name"):
        register(con, tmp_path, family="XGBoost")
    with pytest.raises(ValueError, match="stateful model continues from a parent; pass parent_version"):
        register(con, tmp_path, training_mode="stateful")
    with pytest.raises(ValueError, match="cannot continue from transformer-v1"):
        register(con, tmp_path, training_mode="stateful", parent_version="transformer-v1")
    with pytest.raises(UnknownVersionError, match="'xgboost-v7'; known versions: transformer-v1"):
        register(con, tmp_path, parent_version="xgboost-v7")
    with pytest.raises(ValueError, match="training_mode 'online' is not one of: stateless, stateful"):
        register(con, tmp_path, training_mode="online")
    with pytest.raises(ValueError, match="metrics must be a dict"):
        register(con, tmp_path, metrics=None)
    with pytest.raises(ValueError, match="hyperparameters must be JSON-serializable"):
        register(con, tmp_path, hyperparameters={"booster": object()})
    with pytest.raises(ArtifactError, match="no artifact at .*nowhere.json; pass the file or directory that training"):
        register(con, tmp_path, artifact=tmp_path / "nowhere.json")
    assert [v.version_id for v in registry.list_versions(con)] == ["transformer-v1"]


# -- stages ------------------------------------------------------------------------------------------------

def test_stage_moves_forward_and_is_recorded(con, tmp_path):
    version = register(con, tmp_path)
    assert set_stage(con, "xgboost-v1", "staging", "job:evaluate", "beat champion offline", NOW).stage == "staging"
    assert set_stage(con, "xgboost-v1", "production", "job:promote", "won the A/B test", NOW).stage == "production"
    assert set_stage(con, "xgboost-v1", "archived", "person:alice", "superseded", NOW).stage == "archived"
    assert registry.get(con, version.version_id).stage == "archived"
    history = registry.stage_history(con, "xgboost-v1")
    assert [(c.from_stage, c.to_stage, c.actor) for c in history] == [
        ("candidate", "staging", "job:evaluate"), ("staging", "production", "job:promote"),
        ("production", "archived", "person:alice"),
    ]


@pytest.mark.parametrize(
    ("path", "target", "message"),
    [
        ([], "production", "from candidate to production; allowed from candidate: staging, archived"),
        (["staging"], "candidate", "from staging to candidate; allowed from staging: production, archived"),
        (["archived"], "staging", "from archived to staging; allowed from archived: nothing"),
        (["staging", "production"], "production", "from production to production; allowed from production: archived"),
    ],
)
def test_invalid_stage_moves_name_from_to_and_allowed(con, tmp_path, path, target, message):
    register(con, tmp_path)
    for stage in path:
        set_stage(con, "xgboost-v1", stage, "job:test", "setup", NOW)
    with pytest.raises(ValueError, match=f"cannot move xgboost-v1 {message}"):
        set_stage(con, "xgboost-v1", target, "job:test", "bad move", NOW)
    assert len(registry.stage_history(con, "xgboost-v1")) == len(path)


def test_stage_rejects_unknown_stage_and_version(con, tmp_path):
    register(con, tmp_path)
    with pytest.raises(ValueError, match="stage 'live' is not one of: candidate, staging, production, archived"):
        set_stage(con, "xgboost-v1", "live", "job:test", "typo")
    with pytest.raises(UnknownVersionError, match="'xgboost-v9'; known versions: xgboost-v1"):
        set_stage(con, "xgboost-v9", "staging", "job:test", "typo")


def test_aliases_and_archiving_exclude_each_other(con, tmp_path):
    register(con, tmp_path)
    register(con, tmp_path)
    set_alias(con, "champion", "xgboost-v1", "job:promote", "first model", NOW)
    with pytest.raises(ValueError, match="cannot archive xgboost-v1: alias champion points at it; move or remove"):
        set_stage(con, "xgboost-v1", "archived", "person:alice", "cleanup")
    set_stage(con, "xgboost-v2", "archived", "person:alice", "cleanup")
    with pytest.raises(ValueError, match="cannot point champion at xgboost-v2: it is archived"):
        set_alias(con, "champion", "xgboost-v2", "job:rollback", "rollback")


# -- aliases -----------------------------------------------------------------------------------------------

def test_alias_moves_history_and_rollback_target(con, tmp_path):
    for _ in range(3):
        register(con, tmp_path)
    moves = [("xgboost-v1", "job:promote"), ("xgboost-v2", "job:promote"), ("xgboost-v3", "job:promote"),
             (None, "person:alice"), ("xgboost-v2", "job:rollback")]
    targets = []
    for minute, (target, actor) in enumerate(moves):
        move = set_alias(con, "champion", target, actor, f"move {minute}", NOW + timedelta(minutes=minute))
        assert move.to_version == target and move.alias == "champion"
        found = resolve_alias(con, "champion")
        assert (found.version_id if found else None) == target
        assert rollback_target(con, "champion") == (targets[-1] if targets else None)
        targets.append(target)

    history = alias_history(con, "champion")
    assert [(m.from_version, m.to_version) for m in history] == [
        (None, "xgboost-v1"), ("xgboost-v1", "xgboost-v2"), ("xgboost-v2", "xgboost-v3"), ("xgboost-v3", None),
        (None, "xgboost-v2"),
    ]
    assert [m.actor for m in history] == [actor for _, actor in moves]
    assert [m.moved_at for m in history] == [NOW + timedelta(minutes=i) for i in range(5)]
    assert sorted(m.id for m in history) == [m.id for m in history]
    assert rollback_target(con, "champion") is None  # the latest move re-set a removed alias


def test_moving_an_alias_where_it_points_is_a_no_op(con, tmp_path):
    register(con, tmp_path)
    set_alias(con, "shadow", "xgboost-v1", "sensor:retrain", "new candidate", NOW)
    assert set_alias(con, "shadow", "xgboost-v1", "sensor:retrain", "same candidate again", NOW) is None
    set_alias(con, "shadow", None, "person:bob", "stop shadowing", NOW)
    assert set_alias(con, "shadow", None, "person:bob", "again", NOW) is None
    assert resolve_alias(con, "shadow") is None
    assert len(alias_history(con, "shadow")) == 2
    assert registry.list_aliases(con) == {}


def test_aliases_are_independent(con, tmp_path):
    register(con, tmp_path)
    register(con, tmp_path)
    set_alias(con, "champion", "xgboost-v1", "job:promote", "first", NOW)
    set_alias(con, "challenger", "xgboost-v2", "job:promote", "second", NOW)
    assert registry.list_aliases(con) == {"challenger": "xgboost-v2", "champion": "xgboost-v1"}
    assert [m.alias for m in alias_history(con)] == ["champion", "challenger"]
    assert rollback_target(con, "champion") is None


def test_alias_errors_name_the_value_and_the_fix(con, tmp_path):
    register(con, tmp_path)
    with pytest.raises(ValueError, match="alias 'Champion!' is not a valid name; use 1-64 lowercase letters"):
        set_alias(con, "Champion!", "xgboost-v1", "job:promote", "x")
    with pytest.raises(ValueError, match="actor 'alice' should say who acted as '<kind>:<name>'"):
        set_alias(con, "champion", "xgboost-v1", "alice", "x")
    with pytest.raises(ValueError, match="reason must be a non-empty string"):
        set_alias(con, "champion", "xgboost-v1", "person:alice", " ")
    with pytest.raises(UnknownVersionError, match="unknown model version 'xgboost-v2'; known versions: xgboost-v1"):
        set_alias(con, "champion", "xgboost-v2", "job:promote", "x")
    with pytest.raises(UnknownAliasError, match="unknown alias 'champion'; no alias has been set yet"):
        resolve_alias(con, "champion")
    set_alias(con, "champion", "xgboost-v1", "job:promote", "first", NOW)
    for call in (resolve_alias, alias_history, rollback_target):
        with pytest.raises(UnknownAliasError, match="unknown alias 'champoin'; known aliases: champion; create it"):
            call(con, "champoin")
    with pytest.raises(UnknownAliasError, match="'shadow'; known aliases: champion"):
        set_alias(con, "shadow", None, "person:alice", "remove")
    assert len(alias_history(con)) == 1


# -- artifacts ---------------------------------------------------------------------------------------------

def test_load_artifact_checks_the_file(con, tmp_path):
    artifact = write_artifact(tmp_path, "model.ubj", bytes(range(256)))
    version = register(con, tmp_path, artifact=artifact)
    assert registry.load_artifact(version) == artifact.resolve()

    corrupted = bytearray(artifact.read_bytes())
    corrupted[100] ^= 0x01
    artifact.write_bytes(bytes(corrupted))
    actual = hashlib.sha256(bytes(corrupted)).hexdigest()
    with pytest.raises(ArtifactError, match=f"expected sha256 {version.artifact_sha256}, found {actual}"):
        registry.load_artifact(version)

    artifact.unlink()
    with pytest.raises(ArtifactError) as missing:
        registry.load_artifact(version)
    assert str(missing.value) == (
        f"artifact for xgboost-v1 is missing at {artifact.resolve()}; re-run training or restore the file"
    )


def test_directory_artifacts_cover_names_and_contents(con, tmp_path):
    model = tmp_path / "transformer-model"
    files = {"config.json": b"{}", "weights/layer0.bin": b"\x00" * 1000, "weights/layer1.bin": b"\x01" * 1000}
    for name, content in files.items():
        write_artifact(model, name, content)
    version = register(con, tmp_path, family="transformer", artifact=model)
    assert registry.load_artifact(version) == model.resolve()

    same_files_other_order = tmp_path / "copy"
    for name, content in reversed(files.items()):
        write_artifact(same_files_other_order, name, content)
    assert registry.artifact_sha256(same_files_other_order) == version.artifact_sha256

    (model / "weights/layer1.bin").rename(model / "weights/layer2.bin")
    with pytest.raises(ArtifactError, match="has changed since it was registered"):
        registry.load_artifact(version)
    (model / "weights/layer2.bin").rename(model / "weights/layer1.bin")
    write_artifact(model, "weights/layer0.bin", b"\x00" * 999 + b"\x02")
    with pytest.raises(ArtifactError, match="has changed since it was registered"):
        registry.load_artifact(version)

    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="holds no files; write the model into it before registering"):
        register(con, tmp_path, artifact=tmp_path / "empty")


# -- concurrency -------------------------------------------------------------------------------------------

def run_threads(count: int, work) -> list:
    """Run ``work(index)`` in ``count`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except BaseException as error:  # handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_threads_registering_at_once_get_distinct_contiguous_ids(con, tmp_path):
    def work(index: int) -> list[str]:
        cursor = con.cursor()
        return [register(cursor, tmp_path).version_id for _ in range(3)]

    ids = [version_id for batch in run_threads(8, work) for version_id in batch]
    assert sorted(ids, key=lambda v: int(v.rsplit("-v", 1)[1])) == [f"xgboost-v{n}" for n in range(1, 25)]
    assert len(registry.list_versions(con)) == 24


REGISTER_IN_PROCESS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from trending_assets.lib import registry
    from trending_assets.lib.warehouse import connect

    db, artifact, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    for _ in range(count):
        with connect(db, wait_s=60) as con:
            version = registry.register(con, "xgboost", artifact, "stateless", "scheduled", None, "w1", "abc",
                                        {}, {})
        print(version.version_id)
""")


def test_processes_registering_against_one_file_wait_for_the_lock(db, tmp_path):
    artifact = write_artifact(tmp_path, "model.json")
    processes = [
        subprocess.Popen([sys.executable, "-c", REGISTER_IN_PROCESS, str(db), str(artifact), "3"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    ids = [line for stdout, _ in outputs for line in stdout.split()]
    assert sorted(ids) == sorted(f"xgboost-v{n}" for n in range(1, 10))


def test_threads_moving_one_alias_leave_a_consistent_history(con, tmp_path):
    versions = [register(con, tmp_path).version_id for _ in range(4)]
    set_alias(con, "champion", versions[0], "job:promote", "first champion", NOW)

    def work(index: int) -> list:
        cursor, rng = con.cursor(), random.Random(index)
        return [set_alias(cursor, "champion", rng.choice(versions + [None]), f"job:mover{index}", f"move {n}", NOW)
                for n in range(6)]

    moves = [move for batch in run_threads(8, work) for move in batch if move is not None]
    history = alias_history(con, "champion")
    assert sorted(m.id for m in moves) == [m.id for m in history[1:]]
    assert [m.seq for m in history] == list(range(1, len(history) + 1))
    assert history[0].from_version is None and history[0].actor == "job:promote"
    for previous, current in zip(history, history[1:]):
        assert current.from_version == previous.to_version != current.to_version
    final = resolve_alias(con, "champion")
    assert (final.version_id if final else None) == history[-1].to_version
    assert rollback_target(con, "champion") == history[-1].from_version


class PausingCursor:
    """A cursor that stops once, right after running a statement containing ``marker``, until resumed."""

    def __init__(self, cursor, marker: str):
        self._cursor, self._marker = cursor, marker
        self.paused, self.resume = threading.Event(), threading.Event()

    def execute(self, sql: str, parameters=None):
        result = self._cursor.execute(sql, parameters)
        if self._marker in sql and not self.paused.is_set():
            self.paused.set()
            self.resume.wait(10)
        return result

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)


def interleave(slow_cursor: PausingCursor, slow, fast) -> dict:
    """Run ``slow`` in a thread until its cursor pauses inside the transaction, run ``fast`` to commit here,
    then let ``slow`` finish; return what it returned or raised."""
    outcome = {}

    def run():
        try:
            outcome["result"] = slow()
        except Exception as error:  # handed to the test
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    assert slow_cursor.paused.wait(10)
    fast()
    slow_cursor.resume.set()
    worker.join()
    return outcome


# The second marker is the case DuckDB 2.0 gets wrong on its own: a removal (an update to NULL) racing a pending
# move of the same alias raises no conflict, so only UNIQUE (alias, seq) stops both from committing.
@pytest.mark.parametrize("marker", ["SELECT version_id FROM ml.model_aliases", "UPDATE ml.model_aliases"])
def test_a_move_racing_a_removal_retries_and_extends_the_chain(con, tmp_path, marker):
    for _ in range(2):
        register(con, tmp_path)
    set_alias(con, "champion", "xgboost-v1", "job:promote", "first", NOW)
    slow = PausingCursor(con.cursor(), marker)
    outcome = interleave(slow, lambda: set_alias(slow, "champion", "xgboost-v2", "job:promote", "slow", NOW),
                         lambda: set_alias(con, "champion", None, "person:alice", "fast removal", NOW))
    assert outcome["result"].from_version is None and outcome["result"].seq == 3
    assert [(m.from_version, m.to_version) for m in alias_history(con, "champion")] == [
        (None, "xgboost-v1"), ("xgboost-v1", None), (None, "xgboost-v2"),
    ]
    assert resolve_alias(con, "champion").version_id == "xgboost-v2"


READ_VERSION = "FROM ml.model_versions WHERE version_id"


def test_aliasing_a_version_being_archived_is_refused(con, tmp_path):
    register(con, tmp_path)
    slow = PausingCursor(con.cursor(), READ_VERSION)
    outcome = interleave(slow, lambda: set_alias(slow, "champion", "xgboost-v1", "job:promote", "x", NOW),
                         lambda: set_stage(con, "xgboost-v1", "archived", "person:alice", "cleanup", NOW))
    assert "it is archived" in str(outcome["error"])
    assert registry.list_aliases(con) == {}


def test_archiving_a_version_being_aliased_is_refused(con, tmp_path):
    register(con, tmp_path)
    slow = PausingCursor(con.cursor(), READ_VERSION)
    outcome = interleave(slow, lambda: set_stage(slow, "xgboost-v1", "archived", "person:alice", "x", NOW),
                         lambda: set_alias(con, "champion", "xgboost-v1", "job:promote", "promote", NOW))
    assert "alias champion points at it" in str(outcome["error"])
    assert registry.get(con, "xgboost-v1").stage == "candidate"


# -- compare-and-set and metrics -----------------------------------------------------------------------------

def test_first_champion_is_a_compare_and_set(con, tmp_path):
    first = register(con, tmp_path)
    second = register(con, tmp_path)
    registry.set_alias(con, "champion", first.version_id, "job:test", "first to pass", expected=None)
    with pytest.raises(registry.AliasConflictError, match=f"points at {first.version_id}"):
        registry.set_alias(con, "champion", second.version_id, "job:test", "also first?", expected=None)
    assert registry.resolve_alias(con, "champion").version_id == first.version_id
    assert [m.to_version for m in registry.alias_history(con, "champion")] == [first.version_id]


def test_only_one_of_two_concurrent_first_champions_wins(con, tmp_path):
    versions = [register(con, tmp_path) for _ in range(4)]

    def claim(index: int) -> bool:
        cursor = con.cursor()
        try:
            registry.set_alias(cursor, "champion", versions[index].version_id, "job:test", "first", expected=None)
            return True
        except registry.AliasConflictError:
            return False

    assert sorted(run_threads(4, claim)) == [False, False, False, True]
    assert len(registry.alias_history(con, "champion")) == 1


def test_add_metrics_merges_into_the_summary(con, tmp_path):
    version = register(con, tmp_path)
    updated = registry.add_metrics(con, version.version_id, {"static_test_macro_f1": 0.5})
    assert updated.metrics == {**version.metrics, "static_test_macro_f1": 0.5}
    assert registry.get(con, version.version_id).metrics["static_test_macro_f1"] == 0.5

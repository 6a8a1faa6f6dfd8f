"""Deployment plan: round trip, validation (each rule names its field), atomic publish, and hot reload."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from trending_assets.lib import deployment_plan as dp
from trending_assets.lib.deployment_plan import Canary, Experiment, Holdout, ModelRef, PlanError, PlanWatcher, Variant


def _models(*versions: str) -> dict[str, ModelRef]:
    return {v: ModelRef(v, "genre_xgb", f"/models/{v}/model.json", f"{i:064x}") for i, v in enumerate(versions)}


def make_plan(champion: str = "v1", **overrides: Any) -> dp.DeploymentPlan:
    """A plan using every feature: shadow, canary, a genres and a vibe_tags experiment, a holdout."""
    arguments: dict[str, Any] = dict(
        models=_models("v1", "v2", "v3", "v4", "v5"),
        shadows=("v5",),
        canary=Canary("canary-v4", "v4", 5, "salt-canary"),
        experiments=(
            Experiment("genres-ab", "genres", "salt-genres", 100,
                       (Variant("control", 0.5, model_version="v2"), Variant("treatment", 0.5, model_version="v3"))),
            Experiment("tags-ab", "vibe_tags", "salt-tags", 50,
                       (Variant("rules", 0.1, generator="rules"), Variant("llm", 0.9, generator="llm-small"))),
        ),
        holdout=Holdout(10, "salt-holdout"),
        published_at="2024-04-01T12:00:00Z",
    )
    arguments.update(overrides)
    return dp.build(champion, **arguments)


def _land(path: Path, text: str) -> None:
    """Replace the file the way a writer would (new inode), so the watcher sees a new version."""
    tmp = path.with_name(".landing.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    plan = make_plan()
    path = dp.publish(plan, tmp_path / "serving" / "plan.json")
    assert path == tmp_path / "serving" / "plan.json"
    assert dp.read(path) == plan
    assert dp.from_dict(plan.to_dict()) == plan
    assert plan.to_dict()["schema_version"] == dp.SCHEMA_VERSION
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]  # no temp file left behind


def test_plan_id_is_a_content_hash() -> None:
    plan = make_plan()
    assert len(plan.plan_id) == 16 and int(plan.plan_id, 16) >= 0
    assert make_plan(published_at="2025-01-01T00:00:00Z").plan_id == plan.plan_id  # not part of the content
    assert make_plan(champion="v2").plan_id != plan.plan_id


def test_versions_and_experiment_lookup() -> None:
    plan = make_plan()
    assert plan.versions() == {"v1", "v2", "v3", "v4", "v5"}
    assert plan.experiment("tags-ab").surface == "vibe_tags"
    assert plan.experiment("nope") is None
    minimal = dp.build("v1", _models("v1"))
    assert minimal.versions() == {"v1"} and minimal.canary is None and minimal.holdout is None


def _set(*keys: Any, value: Any) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        target = raw
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return mutate


def _drop(*keys: Any) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        target = raw
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return mutate


def _duplicate_experiment(raw: dict) -> None:
    raw["experiments"].append(dict(raw["experiments"][1], salt="another-salt"))


def _ranking_test(design: str = "team_draft", rankers: tuple[str, ...] = ("popularity", "genre_taste"),
                  surface: str = "ranking") -> Callable[[dict], None]:
    """Add a ranking experiment (experiments[2]) with these settings to the raw plan."""
    def mutate(raw: dict) -> None:
        raw["experiments"].append({
            "experiment_id": "rankers", "surface": surface, "salt": "salt-rankers", "allocation_percent": 100,
            "design": design, "variants": [{"name": f"r{i}", "weight": 1 / len(rankers), "model_version": None,
                                            "generator": "rules", "ranker": r} for i, r in enumerate(rankers)]})
    return mutate


BROKEN = {
    "unknown ranker": (_ranking_test(rankers=("popularity", "trendy")), "experiments[2].variants[1].ranker"),
    "unknown design": (_ranking_test(design="cascade"), "experiments[2].design"),
    "interleaving off the ranking surface": (_ranking_test(surface="vibe_tags"), "experiments[2].design"),
    "interleaving three rankers": (_ranking_test(rankers=("popularity", "genre_taste", "popularity")),
                                   "experiments[2].variants"),
    "a bandit off the ranking surface": (_ranking_test(design="bandit", surface="vibe_tags"), "experiments[2].design"),
    "wrong schema version": (_set("schema_version", value=2), "schema_version"),
    "no schema version": (_drop("schema_version"), "schema_version"),
    "unknown top-level key": (_set("champoin", value="v1"), "champoin"),
    "unknown nested key": (_set("experiments", 0, "variants", 0, "wieght", value=0.5), "wieght"),
    "missing field": (_drop("models", "v1", "family"), "models.v1"),
    "empty champion": (_set("champion", value=""), "champion"),
    "champion not in models": (_set("champion", value="v9"), "champion"),
    "shadow not in models": (_set("shadows", value=["v9"]), "shadows"),
    "shadow is champion": (_set("shadows", value=["v1"]), "shadows"),
    "canary not in models": (_set("canary", "version_id", value="v9"), "canary.version_id"),
    "canary is champion": (_set("canary", "version_id", value="v1"), "canary.version_id"),
    "canary percent above 100": (_set("canary", "percent", value=100.5), "canary.percent"),
    "canary percent negative": (_set("canary", "percent", value=-1), "canary.percent"),
    "canary percent as text": (_set("canary", "percent", value="5"), "canary.percent"),
    "canary percent not a number": (_set("canary", "percent", value=float("nan")), "canary.percent"),
    "duplicate experiment id": (_duplicate_experiment, "experiments[2].experiment_id"),
    "experiment id of the canary": (_set("experiments", 1, "experiment_id", value="canary-v4"), "experiment_id"),
    "unknown surface": (_set("experiments", 0, "surface", value="homepage"), "experiments[0].surface"),
    "allocation zero": (_set("experiments", 0, "allocation_percent", value=0), "allocation_percent"),
    "allocation above 100": (_set("experiments", 0, "allocation_percent", value=101), "allocation_percent"),
    "one variant": (lambda raw: raw["experiments"][0]["variants"].pop(), "experiments[0].variants"),
    "duplicate variant names": (_set("experiments", 0, "variants", 1, "name", value="control"), "variants"),
    "zero weight": (_set("experiments", 1, "variants", 0, "weight", value=0), "variants[0].weight"),
    "weights not summing to 1": (_set("experiments", 0, "variants", 0, "weight", value=0.4), "weights sum"),
    "genres variant without model": (_set("experiments", 0, "variants", 1, "model_version", value=None),
                                     "variants[1].model_version"),
    "genres variant unknown model": (_set("experiments", 0, "variants", 1, "model_version", value="v9"),
                                     "variants[1].model_version"),
    "vibe_tags variant without generator": (_set("experiments", 1, "variants", 0, "generator", value=""),
                                            "variants[0].generator"),
    "holdout of 100 percent": (_set("holdout", "percent", value=100), "holdout.percent"),
    "holdout negative": (_set("holdout", "percent", value=-5), "holdout.percent"),
    "salt shared by two splits": (_set("holdout", "salt", value="salt-canary"), "holdout.salt"),
    "empty salt": (_set("experiments", 0, "salt", value=""), "experiments[0].salt"),
    "model keyed by another id": (_set("models", "v1", "version_id", value="v1b"), "models.v1"),
    "published_at not ISO": (_set("published_at", value="yesterday"), "published_at"),
    "plan_id edited by hand": (_set("plan_id", value="0" * 16), "plan_id"),
    "models not an object": (_set("models", value=["v1"]), "models"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_each_rule_names_its_field(name: str) -> None:
    mutate, field = BROKEN[name]
    raw = json.loads(json.dumps(make_plan().to_dict()))  # as read from the file
    mutate(raw)
    with pytest.raises(PlanError, match=field.replace("[", r"\[").replace("]", r"\]")):
        dp.from_dict(raw)


def test_a_valid_ranking_experiment_round_trips() -> None:
    ranking = Experiment("rankers", "ranking", "salt-rankers", 100, (
        Variant("A", 0.5, ranker="popularity"), Variant("B", 0.5, ranker="genre_taste")), design="team_draft")
    plan = make_plan(experiments=(*make_plan().experiments, ranking))
    assert dp.from_dict(plan.to_dict()) == plan
    assert plan.experiment("rankers").design == "team_draft" and plan.experiment("tags-ab").design == "ab"


def test_build_validates_too() -> None:
    with pytest.raises(PlanError, match="champion"):
        dp.build("v9", _models("v1"))
    with pytest.raises(PlanError, match="weights sum"):
        make_plan(experiments=(Experiment("x", "vibe_tags", "s", 100,
                                          (Variant("a", 0.5, generator="g"), Variant("b", 0.6, generator="g"))),))


def test_read_reports_missing_file_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    with pytest.raises(PlanError, match="no plan file"):
        dp.read(path)
    path.write_text('{"schema_version": 1, "champ')
    with pytest.raises(PlanError, match="not valid JSON") as error:
        dp.read(path)
    assert str(path) in str(error.value)
    path.write_text("[1, 2]")
    with pytest.raises(PlanError, match="expected a JSON object"):
        dp.read(path)


def test_publish_writes_a_hidden_temp_file_beside_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: Path) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(dp.os, "replace", spy)
    target = tmp_path / "plan.json"
    dp.publish(make_plan(), target)
    [(src, dst)] = renames
    assert dst == target and src.parent == target.parent and src.name.startswith(".")


def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    plans = [make_plan(), make_plan(champion="v2", shadows=(), canary=None, experiments=(), holdout=None)]
    dp.publish(plans[0], path)
    stop = threading.Event()
    failures: list[str] = []
    reads = 0
    watcher = PlanWatcher(path)

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                assert dp.read(path) in plans
            except PlanError as exc:
                failures.append(str(exc))
            watcher.poll()
            reads += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            dp.publish(plans[i % 2], path)
    finally:
        stop.set()
        thread.join()
    assert failures == [] and watcher.last_error is None and watcher.rejected == 0
    assert reads > 0 and watcher.current in plans


def test_watcher_loads_and_swaps_plans(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    watcher = PlanWatcher(path)
    assert watcher.poll() is False and watcher.current is None and "no plan file" in watcher.last_error
    first, second = make_plan(), make_plan(champion="v2")
    dp.publish(first, path)
    assert watcher.poll() is True and watcher.current == first and watcher.last_error is None
    assert watcher.loaded_at is not None
    assert watcher.poll() is False  # no change: nothing read
    dp.publish(second, path)
    assert watcher.poll() is True and watcher.current == second and watcher.reloads == 2


def test_watcher_keeps_the_last_good_plan(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "plan.json"
    good = make_plan()
    dp.publish(good, path)
    watcher = PlanWatcher(path)
    assert watcher.poll()
    text = path.read_text()

    caplog.set_level(logging.ERROR, logger=dp.__name__)
    _land(path, text[: len(text) // 2])  # truncated JSON
    assert watcher.poll() is False and watcher.poll() is False
    assert watcher.current == good and watcher.rejected == 1
    assert str(path) in watcher.last_error and "not valid JSON" in watcher.last_error
    assert len(caplog.records) == 1  # logged once per bad file version, not on every poll

    invalid = good.to_dict()
    invalid["champion"] = "v9"
    _land(path, json.dumps(invalid))
    assert watcher.poll() is False and watcher.current == good and watcher.rejected == 2
    assert "champion" in watcher.last_error and len(caplog.records) == 2

    path.unlink()
    assert watcher.poll() is False and watcher.current == good and "no plan file" in watcher.last_error

    dp.publish(good, path)
    assert watcher.poll() is True and watcher.current == good and watcher.last_error is None

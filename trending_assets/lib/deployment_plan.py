"""The deployment plan: which model version serves whom (champion, canary, shadows, experiments, holdout).

A Dagster asset builds it from the registry and publishes it as one JSON file; the serving API hot-reloads it with
``PlanWatcher``. The file is the whole contract between the two, so both sides validate it strictly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from trending_assets.lib import atomic_file
from trending_assets.lib.rankers import RANKERS

SCHEMA_VERSION = 1
SURFACES = ("genres", "vibe_tags", "ranking")
# how an experiment compares its variants: users split between them by fixed weights (ab) or by a bandit's current
# probabilities (bandit), or (rankers only) one team-draft interleaved list, whose log (the team of each position) is
# all its credit needs; balanced interleaving, whose credit needs both original rankings, is not served
DESIGNS = ("ab", "bandit", "team_draft", "balanced")
INTERLEAVED = ("team_draft", "balanced")  # designs that merge two rankings into one list
WEIGHT_TOLERANCE = 1e-6

log = logging.getLogger(__name__)


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class ModelRef:
    version_id: str
    family: str
    artifact_path: str
    artifact_sha256: str


@dataclass(frozen=True)
class Canary:
    experiment_id: str
    version_id: str
    percent: float
    salt: str


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    model_version: str | None = None  # surface "genres": the model this arm serves
    generator: str | None = None  # surface "vibe_tags": the tag generator this arm uses
    ranker: str | None = None  # surface "ranking": the ranker (``rankers.RANKERS``) that orders /trending


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    surface: str
    salt: str
    allocation_percent: float
    variants: tuple[Variant, ...]
    design: str = "ab"  # one of DESIGNS; team_draft and balanced interleave the two variants' rankings


@dataclass(frozen=True)
class Holdout:
    percent: float
    salt: str


@dataclass(frozen=True)
class DeploymentPlan:
    plan_id: str  # first 16 hex of the sha256 of the canonical content (without plan_id and published_at)
    published_at: str  # ISO UTC
    champion: str
    models: dict[str, ModelRef]  # every version the plan routes to
    shadows: tuple[str, ...] = ()
    canary: Canary | None = None
    experiments: tuple[Experiment, ...] = ()
    holdout: Holdout | None = None
    ranker: str = "popularity"  # orders /trending for users outside ranking experiments (ranker_candidates)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data, ``schema_version`` included: what ``publish`` writes."""
        return {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}

    def experiment(self, experiment_id: str) -> Experiment | None:
        """The experiment with this id, or None."""
        return next((e for e in self.experiments if e.experiment_id == experiment_id), None)

    def versions(self) -> set[str]:
        """Every model version the plan routes traffic to (champion, shadows, canary, experiment arms)."""
        routed = {self.champion, *self.shadows}
        if self.canary:
            routed.add(self.canary.version_id)
        routed |= {v.model_version for e in self.experiments for v in e.variants if v.model_version}
        return routed


def _plan_id(plan: DeploymentPlan) -> str:
    content = {k: v for k, v in plan.to_dict().items() if k not in ("plan_id", "published_at")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise PlanError(message)


def _validate(plan: DeploymentPlan) -> None:
    """The rules a plan must satisfy however it was made; the first broken one raises ``PlanError``."""
    try:
        datetime.fromisoformat(plan.published_at)
    except (TypeError, ValueError):
        raise PlanError(f"published_at: {plan.published_at!r} is not ISO; write it like 2024-04-01T12:00:00Z") from None
    for key, ref in plan.models.items():
        _check(key == ref.version_id, f"models.{key}: version_id is {ref.version_id!r}; key models by version_id")
    known = "is not in models; add its ModelRef to models"
    _check(bool(plan.champion), "champion: empty; name the version that serves by default")
    _check(plan.champion in plan.models, f"champion: {plan.champion!r} {known}")
    _check(plan.ranker in RANKERS, f"ranker: {plan.ranker!r} is not one of {', '.join(RANKERS)}; name a ranker")
    for shadow in plan.shadows:
        _check(shadow in plan.models, f"shadows: {shadow!r} {known}")
        _check(shadow != plan.champion, f"shadows: {shadow!r} is the champion; a champion cannot shadow itself")
    taken = [plan.canary.experiment_id] if plan.canary else []  # experiment ids so far
    # Each split hashes user ids with its salt; a shared salt would send the same users to the same side of both.
    salts: list[tuple[str, str]] = []
    if plan.canary:
        c = plan.canary
        _check(c.version_id in plan.models, f"canary.version_id: {c.version_id!r} {known}")
        _check(c.version_id != plan.champion, "canary.version_id: is the champion; canary a different version")
        _check(0 <= c.percent <= 100, f"canary.percent: {c.percent} is outside [0, 100]; give a percentage")
        salts.append(("canary.salt", c.salt))
    if plan.holdout:
        _check(0 <= plan.holdout.percent < 100, f"holdout.percent: {plan.holdout.percent} is outside [0, 100); "
                                                "give a percentage below 100")
        salts.append(("holdout.salt", plan.holdout.salt))
    for i, e in enumerate(plan.experiments):
        at = f"experiments[{i}]"
        _check(e.experiment_id not in taken, f"{at}.experiment_id: {e.experiment_id!r} is taken by the canary "
                                             "or an earlier experiment; make ids unique")
        taken.append(e.experiment_id)
        _check(e.surface in SURFACES, f"{at}.surface: {e.surface!r} is not one of {', '.join(SURFACES)}")
        _check(0 < e.allocation_percent <= 100,
               f"{at}.allocation_percent: {e.allocation_percent} is outside (0, 100]; give a percentage")
        _check(len(e.variants) >= 2, f"{at}.variants: {len(e.variants)} given; an experiment needs at least 2")
        names = [v.name for v in e.variants]
        _check(all(names) and len(set(names)) == len(names), f"{at}.variants: names must be non-empty and unique")
        for j, v in enumerate(e.variants):
            _check(v.weight > 0, f"{at}.variants[{j}].weight: {v.weight} must be > 0; drop the variant instead")
            if e.surface == "genres" or v.model_version is not None:
                _check(v.model_version in plan.models, f"{at}.variants[{j}].model_version: {v.model_version!r} {known}")
            if e.surface == "vibe_tags":
                _check(bool(v.generator), f"{at}.variants[{j}].generator: empty; name the tag generator")
            if e.surface == "ranking":
                _check(v.ranker in RANKERS, f"{at}.variants[{j}].ranker: {v.ranker!r} is not one of "
                                            f"{', '.join(RANKERS)}; name a ranker")
        _check(e.design in DESIGNS, f"{at}.design: {e.design!r} is not one of {', '.join(DESIGNS)}")
        if e.design != "ab":
            _check(e.surface == "ranking", f"{at}.design: {e.design} is for rankers; use it on surface ranking, "
                                           "or design ab")
        if e.design in INTERLEAVED:
            _check(len(e.variants) == 2, f"{at}.variants: {len(e.variants)} given; interleaving compares exactly 2")
        total = math.fsum(v.weight for v in e.variants)
        _check(abs(total - 1) <= WEIGHT_TOLERANCE, f"{at}.variants: weights sum to {total}; make them sum to 1")
        salts.append((f"{at}.salt", e.salt))
    for i, (name, salt) in enumerate(salts):
        _check(bool(salt) and salt not in [s for _, s in salts[:i]],
               f"{name}: {salt!r} is empty or used by another split; give each split its own random salt")


def build(champion: str, models: dict[str, ModelRef], shadows: Iterable[str] = (), canary: Canary | None = None,
          experiments: Iterable[Experiment] = (), holdout: Holdout | None = None,
          published_at: str | None = None, ranker: str = "popularity") -> DeploymentPlan:
    """A validated plan with its content-hash ``plan_id``; ``published_at`` defaults to now (UTC)."""
    stamp = published_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    draft = DeploymentPlan("", stamp, champion, dict(models), tuple(shadows), canary, tuple(experiments), holdout,
                           ranker)
    _validate(draft)
    return dataclasses.replace(draft, plan_id=_plan_id(draft))


def _parse(hint: Any, raw: Any, where: str) -> Any:
    """``raw`` (parsed JSON) as a value of type ``hint``, the dataclass field types above; ``where`` names it."""
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        _check(isinstance(raw, dict), f"{where}: expected an object, got {raw!r}")
        fields = {f.name: f for f in dataclasses.fields(hint)}
        unknown = sorted(map(str, set(raw) - set(fields)))  # a typo must not pass silently
        _check(not unknown, f"{where}: unknown field(s) {', '.join(unknown)}; fix the spelling ({', '.join(fields)})")
        missing = [n for n, f in fields.items() if n not in raw and f.default is dataclasses.MISSING]
        _check(not missing, f"{where}: missing field(s) {', '.join(missing)}; add them")
        hints = get_type_hints(hint)
        return hint(**{n: _parse(hints[n], v, f"{where}.{n}".removeprefix("plan.")) for n, v in raw.items()})
    if type(None) in args:  # X | None
        return None if raw is None else _parse(args[0], raw, where)
    if origin is tuple:
        _check(isinstance(raw, (list, tuple)), f"{where}: expected a list, got {raw!r}")
        return tuple(_parse(args[0], item, f"{where}[{i}]") for i, item in enumerate(raw))
    if origin is dict:
        _check(isinstance(raw, dict), f"{where}: expected an object keyed by version_id, got {raw!r}")
        return {key: _parse(args[1], value, f"{where}.{key}") for key, value in raw.items()}
    if hint is float:
        # Comparisons, not math.isfinite: a huge JSON integer would overflow it; NaN fails both.
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and -math.inf < raw < math.inf
        _check(ok, f"{where}: expected a finite number, got {raw!r}")
    else:
        _check(isinstance(raw, str), f"{where}: expected text, got {raw!r}")
    return raw  # numbers as written (5 stays 5, not 5.0), so the content hash matches the one build computed


def from_dict(raw: dict[str, Any]) -> DeploymentPlan:
    """The plan in ``raw`` (as ``to_dict`` writes it), fully validated; ``PlanError`` names what is wrong."""
    _check(isinstance(raw, dict), f"plan: expected a JSON object, got {type(raw).__name__}")
    version = raw.get("schema_version")
    _check(version == SCHEMA_VERSION, f"schema_version: got {version!r}, this code reads {SCHEMA_VERSION}; "
                                      "republish the plan with a matching trending_assets")
    plan = _parse(DeploymentPlan, {k: v for k, v in raw.items() if k != "schema_version"}, "plan")
    _validate(plan)
    expected = _plan_id(plan)
    _check(plan.plan_id == expected, f"plan_id: {plan.plan_id!r} does not match the content ({expected}); "
                                     "the file was edited by hand: rebuild it with deployment_plan.build")
    return plan


def publish(plan: DeploymentPlan, path: Path) -> Path:
    """Write ``plan`` to ``path`` atomically (``atomic_file``): a reader sees the old plan or the new one, never half
    a file."""
    return atomic_file.write_json(path, plan.to_dict(), indent=2)


def _read(path: Path) -> tuple[DeploymentPlan, tuple[int, int, int]]:
    """The plan and the (mtime_ns, size, inode) of the very file read, even if another replaced it since."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            return from_dict(json.loads(handle.read())), (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except FileNotFoundError:
        raise PlanError(f"{path}: no plan file; materialize the deployment plan asset first") from None
    except PlanError as exc:
        raise PlanError(f"{path}: {exc}") from None
    except ValueError as exc:  # after PlanError, which is a ValueError too
        raise PlanError(f"{path}: not valid JSON ({exc}); republish the plan") from None


def read(path: Path) -> DeploymentPlan:
    """The plan published at ``path``; ``PlanError`` when it is missing, not JSON, or invalid."""
    return _read(path)[0]


class PlanWatcher:
    """Hot reload: keeps the last good plan when a new file is corrupt."""

    def __init__(self, path: Path):
        self.path = path
        self.current: DeploymentPlan | None = None
        self.last_error: str | None = None
        self.loaded_at: float | None = None
        self.reloads = 0
        self.rejected = 0
        self._seen: tuple[int, int, int] | None = (-1, -1, -1)  # the file version last read (None: no file)
        self._lock = threading.Lock()

    def poll(self) -> bool:
        """Reload the plan if the file changed (a stat otherwise); True when a new plan was swapped in.

        A bad file keeps the current plan, sets ``last_error`` and is logged once.
        """
        with self._lock:
            try:
                stat = self.path.stat()
                key: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except FileNotFoundError:
                key = None
            if key == self._seen:
                return False
            try:
                plan, self._seen = _read(self.path)
            except PlanError as exc:
                self._seen, self.last_error = key, str(exc)
                self.rejected += 1
                serving = f"still serving {self.current.plan_id}" if self.current else "no plan to serve"
                log.error("deployment plan rejected, %s: %s", serving, exc)
                return False
            self.current, self.loaded_at, self.last_error = plan, time.time(), None
            self.reloads += 1
            log.info("deployment plan %s loaded (champion %s)", plan.plan_id, plan.champion)
            return True

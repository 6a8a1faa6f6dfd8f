"""The model registry of record: versions, stages and aliases in DuckDB, artifacts on disk checked by sha256.

Plain functions that take a DuckDB connection, like ``window_store``: open one with ``warehouse.connect`` (it
waits while another process holds the file) and give each thread its own ``con.cursor()``. Every write runs in
a transaction of its own, so call it outside an open one, and is retried when a concurrent writer wins a race
(``registry_schema.run_in_transaction``). Unique keys decide the races: ``(family, version_number)`` hands out
each version number once, and ``(alias, seq)`` makes overlapping moves of one alias collide, so
``ml.alias_history`` is a chain per alias whose last ``to_version`` is where the alias points and whose last
``from_version`` is the rollback target.

Choices: moving an alias to where it already points is a no-op (no history row; returns None), so sensors may
repeat themselves. Removing an alias points it at None; its row stays, so "removed" differs from "never set".
No alias may point at an archived version: ``set_alias`` refuses archived versions and ``set_stage`` refuses to
archive a version an alias points at (both bump the version's ``revision``, so they cannot race past each
other). Stage changes go to ``ml.stage_history``; a version's ``created_at`` is when it became a candidate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from pathlib import Path

import duckdb

from trending_assets.lib.registry_schema import (
    ALIAS_MOVE_COLUMNS,
    STAGE_CHANGE_COLUMNS,
    STAGES,
    TRAINING_MODES,
    TRANSITIONS,
    VERSION_COLUMNS,
    AliasMove,
    ModelVersion,
    RegistryBusyError,
    StageChange,
    as_utc,
    check_actor_and_reason,
    check_name,
    check_text,
    ensure_schema,
    json_safe,
    registry_exists,
    run_in_transaction,
    version_from_row,
    version_to_row,
)

__all__ = [  # the public API; the records, RegistryBusyError and ensure_schema come from registry_schema
    "AliasConflictError", "AliasMove", "ArtifactError", "ModelVersion", "RegistryBusyError", "StageChange",
    "UnknownAliasError", "UnknownVersionError", "add_metrics", "alias_history", "artifact_sha256", "ensure_schema",
    "get", "list_aliases", "list_versions", "load_artifact", "register", "resolve_alias", "rollback_target",
    "set_alias", "set_stage", "stage_history",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ArtifactError(Exception):
    """A model's artifact is missing, empty or no longer matches its registered checksum."""


class UnknownVersionError(LookupError):
    """No model version has that id."""


class UnknownAliasError(LookupError):
    """No alias of that name was ever set."""


class AliasConflictError(RuntimeError):
    """A compare-and-set alias move found the alias somewhere other than expected (someone moved it first)."""


_ANY = object()  # set_alias without a compare-and-set condition


# -- artifacts ---------------------------------------------------------------------------------------------

def artifact_sha256(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's files in sorted relative-path order, each framed by its
    relative path and size so renaming or moving bytes between files changes the digest. Empty directories
    inside the artifact are not covered."""
    if not path.exists():
        raise ArtifactError(f"no artifact at {path}; pass the file or directory that training wrote")
    if path.is_file():
        digest = hashlib.sha256()
        _feed(digest, path)
        return digest.hexdigest()
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    if not files:
        raise ArtifactError(f"artifact directory {path} holds no files; write the model into it before registering")
    digest = hashlib.sha256()
    for name, file in files:
        encoded = name.encode()
        digest.update(f"{len(encoded)}:".encode() + encoded + f"{file.stat().st_size}:".encode())
        _feed(digest, file)
    return digest.hexdigest()


def _feed(digest, file: Path) -> None:
    with file.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def load_artifact(version: ModelVersion) -> Path:
    """The version's artifact path, after checking that it exists and still has its registered checksum."""
    path = Path(version.artifact_path)
    if not path.exists():
        raise ArtifactError(
            f"artifact for {version.version_id} is missing at {path}; re-run training or restore the file"
        )
    actual = artifact_sha256(path)
    if actual != version.artifact_sha256:
        raise ArtifactError(
            f"artifact for {version.version_id} at {path} has changed since it was registered: expected sha256 "
            f"{version.artifact_sha256}, found {actual}; restore the original or re-run training and register "
            "a new version"
        )
    return path


# -- versions ----------------------------------------------------------------------------------------------

def register(
    con: duckdb.DuckDBPyConnection,
    family: str,
    artifact_dir_or_path: Path | str,
    training_mode: str,
    training_reason: str,
    parent_version: str | None,
    window_id: str,
    code_version: str,
    hyperparameters: dict,
    metrics: dict,
    now: datetime | None = None,
    *,
    notes: str | None = None,
) -> ModelVersion:
    """Record a trained model as the next ``<family>-v<n>``, stage "candidate", with its artifact's sha256.

    A stateful model continues training ``parent_version``, which must be of the same family; a stateless one
    may name a parent for lineage. ``now`` (UTC) defaults to the current time.
    """
    check_name("family", family, "xgboost")
    if training_mode not in TRAINING_MODES:
        raise ValueError(f"training_mode {training_mode!r} is not one of: {', '.join(TRAINING_MODES)}")
    if training_mode == "stateful" and parent_version is None:
        raise ValueError(
            "a stateful model continues from a parent; pass parent_version or use training_mode='stateless'"
        )
    check_text("training_reason", training_reason)
    check_text("window_id", window_id)
    check_text("code_version", code_version)
    artifact = Path(artifact_dir_or_path).expanduser().resolve()
    sha256 = artifact_sha256(artifact)
    hyperparameters, metrics = json_safe("hyperparameters", hyperparameters), json_safe("metrics", metrics)
    ensure_schema(con)

    def insert() -> ModelVersion:
        if parent_version is not None:
            parent = get(con, parent_version)
            if training_mode == "stateful" and parent.family != family:
                raise ValueError(f"a stateful {family} model cannot continue from {parent_version} ({parent.family}); "
                                 f"pass a {family} parent or use training_mode='stateless'")
        number = con.execute(
            "SELECT coalesce(max(version_number), 0) + 1 FROM ml.model_versions WHERE family = ?", [family]
        ).fetchall()[0][0]
        version = ModelVersion(
            version_id=f"{family}-v{number}", family=family, version_number=number, created_at=as_utc(now),
            stage="candidate", training_mode=training_mode, training_reason=training_reason,
            parent_version=parent_version, window_id=window_id, code_version=code_version,
            hyperparameters=hyperparameters, artifact_path=str(artifact), artifact_sha256=sha256, metrics=metrics,
            notes=notes,
        )
        row = version_to_row(version)
        con.execute(f"INSERT INTO ml.model_versions ({VERSION_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)
        return version

    version = run_in_transaction(con, insert, f"registering a {family} model")
    log.info("registered %s (%s: %s) trained on window %s",
             version.version_id, training_mode, training_reason, window_id)
    return version


def get(con: duckdb.DuckDBPyConnection, version_id: str) -> ModelVersion:
    """The version with this id; UnknownVersionError naming the known ones if there is none."""
    rows = []
    if registry_exists(con):
        rows = con.execute(
            f"SELECT {VERSION_COLUMNS} FROM ml.model_versions WHERE version_id = ?", [version_id]
        ).fetchall()
    if not rows:
        known = [v.version_id for v in list_versions(con)]
        if not known:
            hint = "no model is registered yet; register one first"
        else:
            more = f" and {len(known) - 12} more (see list_versions)" if len(known) > 12 else ""
            hint = f"known versions: {', '.join(known[:12])}{more}"
        raise UnknownVersionError(f"unknown model version {version_id!r}; {hint}")
    return version_from_row(rows[0])


def list_versions(con: duckdb.DuckDBPyConnection, family: str | None = None) -> list[ModelVersion]:
    """All versions (or one family's), oldest first within each family."""
    if not registry_exists(con):
        return []
    where, params = ("WHERE family = ?", [family]) if family is not None else ("", [])
    rows = con.execute(
        f"SELECT {VERSION_COLUMNS} FROM ml.model_versions {where} ORDER BY family, version_number", params
    ).fetchall()
    return [version_from_row(row) for row in rows]


def add_metrics(con: duckdb.DuckDBPyConnection, version_id: str, metrics: dict) -> ModelVersion:
    """Merge ``metrics`` into the version's metrics summary (evaluation adds its headline numbers after
    training registered the version); keys already there are overwritten."""
    metrics = json_safe("metrics", metrics)
    ensure_schema(con)

    def merge() -> ModelVersion:
        version = get(con, version_id)
        con.execute("UPDATE ml.model_versions SET metrics = ?, revision = revision + 1 WHERE version_id = ?",
                    [json.dumps({**version.metrics, **metrics}, sort_keys=True), version_id])
        return get(con, version_id)

    return run_in_transaction(con, merge, f"adding metrics to {version_id}")


def set_stage(
    con: duckdb.DuckDBPyConnection, version_id: str, stage: str, actor: str, reason: str, now: datetime | None = None
) -> ModelVersion:
    """Move a version along candidate -> staging -> production (any live stage -> archived), recording it in
    ``ml.stage_history``; ValueError for any other move. Archiving a version an alias points at is refused."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of: {', '.join(STAGES)}")
    check_actor_and_reason(actor, reason)
    ensure_schema(con)

    def change() -> ModelVersion:
        version = get(con, version_id)
        allowed = TRANSITIONS[version.stage]
        if stage not in allowed:
            raise ValueError(f"cannot move {version_id} from {version.stage} to {stage}; allowed from "
                             f"{version.stage}: {', '.join(allowed) or 'nothing (archived is final)'}")
        if stage == "archived":
            holders = [alias for alias, target in list_aliases(con).items() if target == version_id]
            if holders:
                raise ValueError(f"cannot archive {version_id}: alias {', '.join(holders)} points at it; "
                                 "move or remove the alias with set_alias first")
        con.execute("UPDATE ml.model_versions SET stage = ?, revision = revision + 1 WHERE version_id = ?",
                    [stage, version_id])
        con.execute("INSERT INTO ml.stage_history (version_id, from_stage, to_stage, changed_at, actor, reason) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [version_id, version.stage, stage, as_utc(now), actor, reason])
        return get(con, version_id)

    updated = run_in_transaction(con, change, f"moving {version_id} to {stage}")
    log.info("%s moved %s to %s: %s", actor, version_id, stage, reason)
    return updated


def stage_history(con: duckdb.DuckDBPyConnection, version_id: str | None = None) -> list[StageChange]:
    """Stage changes (of one version, or all), oldest first."""
    if not registry_exists(con):
        return []
    where, params = ("WHERE version_id = ?", [version_id]) if version_id is not None else ("", [])
    rows = con.execute(f"SELECT {STAGE_CHANGE_COLUMNS} FROM ml.stage_history {where} ORDER BY id", params).fetchall()
    return [StageChange(*row) for row in rows]


# -- aliases -----------------------------------------------------------------------------------------------

def set_alias(
    con: duckdb.DuckDBPyConnection, alias: str, version_id: str | None, actor: str, reason: str,
    now: datetime | None = None, *, expected: str | None | object = _ANY,
) -> AliasMove | None:
    """Point ``alias`` at ``version_id`` (None removes it) and append the move to ``ml.alias_history``, in one
    transaction. Returns the history row, or None when the alias already points there (nothing is written).

    ``expected`` makes the move a compare-and-set: it happens only if the alias points at ``expected`` now
    (None: never set or removed), else AliasConflictError. "Make this the first champion" is
    ``expected=None``, so two models that pass their gates at once cannot both become champion."""
    check_name("alias", alias, "champion")
    check_actor_and_reason(actor, reason)
    ensure_schema(con)

    def move() -> AliasMove | None:
        current = con.execute("SELECT version_id FROM ml.model_aliases WHERE alias = ?", [alias]).fetchall()
        if not current and version_id is None:
            raise _unknown_alias(con, alias)
        from_version = current[0][0] if current else None
        if expected is not _ANY and from_version != expected:
            raise AliasConflictError(f"{alias} points at {from_version or 'nothing'}, not at {expected or 'nothing'} "
                                     f"as {actor} expected; re-read the alias and decide again")
        if current and from_version == version_id:
            return None
        if version_id is not None:
            if get(con, version_id).stage == "archived":
                raise ValueError(f"cannot point {alias} at {version_id}: it is archived; choose a live version")
            # Conflicts with a concurrent set_stage of the target (see ``revision`` in registry_schema).
            con.execute("UPDATE ml.model_versions SET revision = revision + 1 WHERE version_id = ?", [version_id])
        seq = con.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM ml.alias_history WHERE alias = ?", [alias]
        ).fetchall()[0][0]
        moved_at = as_utc(now)
        if current:
            con.execute("UPDATE ml.model_aliases SET version_id = ?, updated_at = ? WHERE alias = ?",
                        [version_id, moved_at, alias])
        else:
            con.execute("INSERT INTO ml.model_aliases VALUES (?, ?, ?)", [alias, version_id, moved_at])
        row = con.execute(
            "INSERT INTO ml.alias_history (alias, seq, from_version, to_version, moved_at, actor, reason) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {ALIAS_MOVE_COLUMNS}",
            [alias, seq, from_version, version_id, moved_at, actor, reason],
        ).fetchall()[0]
        return AliasMove(*row)

    moved = run_in_transaction(con, move, f"moving alias {alias}")
    if moved is not None:
        log.info("%s moved %s from %s to %s: %s", actor, alias, moved.from_version, moved.to_version, reason)
    return moved


def resolve_alias(con: duckdb.DuckDBPyConnection, alias: str) -> ModelVersion | None:
    """The version the alias points at; None if it was removed, UnknownAliasError if it was never set."""
    check_name("alias", alias, "champion")
    rows = []
    if registry_exists(con):
        rows = con.execute("SELECT version_id FROM ml.model_aliases WHERE alias = ?", [alias]).fetchall()
    if not rows:
        raise _unknown_alias(con, alias)
    return get(con, rows[0][0]) if rows[0][0] is not None else None


def list_aliases(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Alias -> version id for every alias that points somewhere (removed ones are left out)."""
    if not registry_exists(con):
        return {}
    rows = con.execute(
        "SELECT alias, version_id FROM ml.model_aliases WHERE version_id IS NOT NULL ORDER BY alias"
    ).fetchall()
    return dict(rows)


def alias_history(con: duckdb.DuckDBPyConnection, alias: str | None = None) -> list[AliasMove]:
    """Every move (of one alias, or of all), oldest first."""
    if alias is not None:
        check_name("alias", alias, "champion")
    if not registry_exists(con):
        if alias is not None:
            raise _unknown_alias(con, alias)
        return []
    where, params = ("WHERE alias = ?", [alias]) if alias is not None else ("", [])
    rows = con.execute(f"SELECT {ALIAS_MOVE_COLUMNS} FROM ml.alias_history {where} ORDER BY id", params).fetchall()
    if alias is not None and not rows:
        raise _unknown_alias(con, alias)
    return [AliasMove(*row) for row in rows]


def rollback_target(con: duckdb.DuckDBPyConnection, alias: str) -> str | None:
    """Where a rollback of ``alias`` goes: the version it pointed at before its latest move (None if the latest
    move set it for the first time). Rolling back twice therefore returns to where it started."""
    return alias_history(con, alias)[-1].from_version


# -- errors ------------------------------------------------------------------------------------------------

def _unknown_alias(con: duckdb.DuckDBPyConnection, alias: str) -> UnknownAliasError:
    known = []
    if registry_exists(con):
        known = [row[0] for row in con.execute("SELECT alias FROM ml.model_aliases ORDER BY alias").fetchall()]
    hint = f"known aliases: {', '.join(known)}" if known else "no alias has been set yet"
    return UnknownAliasError(f"unknown alias {alias!r}; {hint}; create it with set_alias")



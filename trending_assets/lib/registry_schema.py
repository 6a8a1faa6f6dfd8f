"""The model registry's tables in the ``ml`` schema, the records read back from them, the rules their fields
follow, and the transaction runner every registry write goes through.

``ml.model_versions`` holds one row per registered model; ``ml.model_aliases`` says where each alias
(champion, challenger, shadow, ...) points now; ``ml.alias_history`` and ``ml.stage_history`` are append-only
logs of every alias move and stage change. The operations live in ``registry.py``.

DuckDB is optimistic: when two transactions write the same data, one fails, at the statement or at commit.
``run_in_transaction`` retries the loser from the start, so it re-reads what it depends on. Which writes collide
is decided here, by the tables' unique keys, because DuckDB 2.0 misses some row-level update conflicts.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from typing import TypeVar

import duckdb

from trending_assets.lib.ingest import utc_now
from trending_assets.lib.warehouse import table_exists

T = TypeVar("T")
MAX_ATTEMPTS = 40

STAGES: tuple[str, ...] = ("candidate", "staging", "production", "archived")
# Forward only; archiving is allowed from every live stage and is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("staging", "archived"),
    "staging": ("production", "archived"),
    "production": ("archived",),
    "archived": (),
}
TRAINING_MODES: tuple[str, ...] = ("stateless", "stateful")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_ACTOR = re.compile(r"[a-z][a-z_]*:\S.*")

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    """CREATE TABLE IF NOT EXISTS ml.model_versions (
        version_id VARCHAR PRIMARY KEY,        -- <family>-v<version_number>, e.g. xgboost-v3
        family VARCHAR NOT NULL,               -- xgboost | transformer | ...
        version_number INTEGER NOT NULL,       -- 1, 2, 3, ... per family, without gaps
        created_at TIMESTAMP NOT NULL,         -- UTC; the version entered "candidate" then
        stage VARCHAR NOT NULL CHECK (stage IN ('candidate', 'staging', 'production', 'archived')),
        training_mode VARCHAR NOT NULL CHECK (training_mode IN ('stateless', 'stateful')),
        training_reason VARCHAR NOT NULL,
        parent_version VARCHAR,                -- the version a stateful model continued from
        window_id VARCHAR NOT NULL,            -- ml.training_windows.window_id: the data version
        code_version VARCHAR NOT NULL,
        hyperparameters JSON NOT NULL,
        artifact_path VARCHAR NOT NULL,        -- absolute path of the file or directory
        artifact_sha256 VARCHAR NOT NULL,
        metrics JSON NOT NULL,
        notes VARCHAR,
        -- Bumped by set_stage and by set_alias onto this version, so those two always conflict when they overlap
        -- (DuckDB 2.0 detects an update conflict only when both write one column, to a new non-null value).
        revision INTEGER NOT NULL DEFAULT 1,
        UNIQUE (family, version_number)
    )""",
    """CREATE TABLE IF NOT EXISTS ml.model_aliases (
        alias VARCHAR PRIMARY KEY,
        version_id VARCHAR,                    -- NULL once removed; the row stays, so removed != never set
        updated_at TIMESTAMP NOT NULL
    )""",
    "CREATE SEQUENCE IF NOT EXISTS ml.alias_history_id",
    # UNIQUE (alias, seq) is what serializes moves of one alias: two overlapping moves compute the same next
    # seq, so one fails and retries. Row-level update conflicts cannot be trusted for this in DuckDB 2.0: an
    # update to NULL racing another update of the row, or a DELETE racing an UPDATE, is silently lost.
    """CREATE TABLE IF NOT EXISTS ml.alias_history (
        id BIGINT PRIMARY KEY DEFAULT nextval('ml.alias_history_id'),  -- increasing; may skip numbers
        alias VARCHAR NOT NULL,
        seq INTEGER NOT NULL,                  -- 1, 2, 3, ...: this move's place in the alias's history
        from_version VARCHAR,                  -- NULL when the alias was first set (or set after removal)
        to_version VARCHAR,                    -- NULL when the alias was removed
        moved_at TIMESTAMP NOT NULL,
        actor VARCHAR NOT NULL,                -- sensor:landing, job:promote, person:alice, ...
        reason VARCHAR NOT NULL,
        UNIQUE (alias, seq)
    )""",
    "CREATE SEQUENCE IF NOT EXISTS ml.stage_history_id",
    """CREATE TABLE IF NOT EXISTS ml.stage_history (
        id BIGINT PRIMARY KEY DEFAULT nextval('ml.stage_history_id'),
        version_id VARCHAR NOT NULL,
        from_stage VARCHAR NOT NULL,
        to_stage VARCHAR NOT NULL,
        changed_at TIMESTAMP NOT NULL,
        actor VARCHAR NOT NULL,
        reason VARCHAR NOT NULL
    )""",
)


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: what it is, what it was trained on and where its artifact lives."""

    version_id: str
    family: str
    version_number: int
    created_at: datetime
    stage: str
    training_mode: str
    training_reason: str
    parent_version: str | None
    window_id: str
    code_version: str
    hyperparameters: dict
    artifact_path: str
    artifact_sha256: str
    metrics: dict
    notes: str | None


@dataclass(frozen=True)
class AliasMove:
    """One row of ``ml.alias_history``; ``to_version`` is None when the alias was removed."""

    id: int
    alias: str
    seq: int
    from_version: str | None
    to_version: str | None
    moved_at: datetime
    actor: str
    reason: str


@dataclass(frozen=True)
class StageChange:
    """One row of ``ml.stage_history``."""

    id: int
    version_id: str
    from_stage: str
    to_stage: str
    changed_at: datetime
    actor: str
    reason: str


VERSION_COLUMNS = ", ".join(f.name for f in fields(ModelVersion))
ALIAS_MOVE_COLUMNS = ", ".join(f.name for f in fields(AliasMove))
STAGE_CHANGE_COLUMNS = ", ".join(f.name for f in fields(StageChange))
_JSON_FIELDS = ("hyperparameters", "metrics")


def version_to_row(version: ModelVersion) -> list:
    """The values for ``INSERT INTO ml.model_versions (VERSION_COLUMNS)``, JSON fields as sorted-key text."""
    values = dict(zip((f.name for f in fields(ModelVersion)), astuple(version)))
    for name in _JSON_FIELDS:
        values[name] = json.dumps(values[name], sort_keys=True)
    return list(values.values())


def version_from_row(row: tuple) -> ModelVersion:
    values = dict(zip((f.name for f in fields(ModelVersion)), row))
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    return ModelVersion(**values)


def registry_exists(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the registry's tables exist; read-only connections cannot create them, so readers ask first."""
    return table_exists(con, "ml", "model_versions")


# -- transactions ----------------------------------------------------------------------------------------

class RegistryBusyError(RuntimeError):
    """A write kept losing to concurrent writers for ``MAX_ATTEMPTS`` attempts."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the registry's tables if they do not exist (every write calls this)."""
    def create() -> None:
        for statement in DDL:
            con.execute(statement)

    run_in_transaction(con, create, "creating the registry tables")


def run_in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], T], what: str) -> T:
    """``work()`` in one transaction of its own, retried from the start while it loses a write race."""
    for attempt in itertools.count(1):
        try:
            con.begin()
        except duckdb.TransactionException as error:
            raise RuntimeError(
                f"{what} needs its own transaction, but the connection is already in one; commit or roll back "
                "first, or use a fresh con.cursor()"
            ) from error
        try:
            result = work()
            con.commit()
            return result
        except (duckdb.TransactionException, duckdb.ConstraintException) as error:
            _rollback(con)
            if not _is_write_conflict(error):
                raise
            if attempt == MAX_ATTEMPTS:
                raise RegistryBusyError(
                    f"{what} lost to concurrent writers {MAX_ATTEMPTS} times in a row; try again"
                ) from error
            time.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.05)))
        except BaseException:
            _rollback(con)
            raise


def _is_write_conflict(error: Exception) -> bool:
    text = str(error).lower()
    if isinstance(error, duckdb.ConstraintException):
        return "duplicate key" in text  # another writer committed the same key after our snapshot
    return "conflict" in text or "constraint violation" in text  # at the statement, or at commit


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.rollback()
    except duckdb.TransactionException:
        pass  # a failed commit has already rolled back


# -- field rules --------------------------------------------------------------------------------------------

def check_name(what: str, value: object, example: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid name; use 1-64 lowercase letters, digits, '-' or '_', "
                         f"starting with a letter (e.g. {example!r})")


def check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string; got {value!r}")


def check_actor_and_reason(actor: object, reason: object) -> None:
    if not isinstance(actor, str) or not _ACTOR.fullmatch(actor):
        raise ValueError(f"actor {actor!r} should say who acted as '<kind>:<name>', e.g. 'person:alice', "
                         "'job:promote' or 'sensor:landing'")
    check_text("reason", reason)


def json_safe(what: str, value: dict) -> dict:
    """A JSON round-trip of ``value``, so the version ``register`` returns equals what ``get`` reads later."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict (use {{}} for none); got {value!r}")
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON-serializable (finite numbers, strings, lists, dicts; None for a "
                         f"missing value): {error}") from error


def as_utc(now: datetime | None) -> datetime:
    """Naive UTC, as the warehouse stores timestamps."""
    if now is None:
        return utc_now()
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now

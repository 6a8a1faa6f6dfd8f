"""The hybrid retraining policy: continue the champion (stateful) by default, retrain from scratch (stateless) when
continuing would be wrong or has gone on long enough.

A stateful update warm-starts from the champion and trains on the movies since its window, which is cheap and keeps
what it learned, but each update drifts further from what a fresh model on the same data would be. So a lineage
retrains from scratch every ``every_k``-th update, on a model iteration (the feature or model config changed, so the
parent's state no longer fits), and whenever there is no compatible parent to continue from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

STATELESS = "stateless"
STATEFUL = "stateful"
MODES: tuple[str, ...] = (STATELESS, STATEFUL)


@dataclass(frozen=True)
class ParentModel:
    """The champion a stateful update would continue from.

    ``code_version`` versions the feature and model config; ``updates_since_stateless`` counts the stateful
    updates in this lineage since its last full retrain (0 for a model that was itself trained from scratch);
    ``window_end`` is the last day of the parent's training window; a stateful update trains on the days after it.
    """

    version_id: str
    family: str
    code_version: str
    updates_since_stateless: int
    window_end: date

    def __post_init__(self) -> None:
        if self.updates_since_stateless < 0:
            raise ValueError(
                f"{self.version_id}: updates_since_stateless counts updates, so at least 0; "
                f"got {self.updates_since_stateless!r}"
            )


@dataclass(frozen=True)
class TrainingDecision:
    """How to train the next model, and why, in a sentence for the run's log and metadata.

    ``parent_version`` is the model a stateful update continues from (None when stateless);
    ``updates_since_stateless`` is the count the new model records, so the next decision can read it.
    """

    mode: str
    reason: str
    parent_version: str | None
    updates_since_stateless: int


def decide(
    family: str, code_version: str, parent: ParentModel | None, every_k: int = 5, force: str | None = None
) -> TrainingDecision:
    """Choose stateless or stateful training for the next ``family`` model built from ``code_version``.

    ``parent`` is the current champion, or None when there is none. ``every_k`` makes every k-th update since the
    last full retrain stateless (1: always stateless). ``force`` ("stateless" or "stateful") overrides the
    schedule; a forced stateful update still needs a compatible parent.
    """
    if every_k < 1:
        raise ValueError(f"every_k must be at least 1 (1 retrains from scratch every time); got {every_k!r}")
    if force is not None and force not in MODES:
        raise ValueError(f"force {force!r} is not one of: {', '.join(MODES)} (or None to follow the policy)")
    if force == STATELESS:
        return _stateless("forced stateless by config")
    incompatible = _incompatibility(family, code_version, parent)
    if incompatible is not None:
        if force == STATEFUL:
            raise ValueError(f"forced stateful by config, but {incompatible}; remove the force to retrain from scratch")
        return _stateless(incompatible)
    update = parent.updates_since_stateless + 1
    if force == STATEFUL:
        return _stateful(parent, f"forced stateful by config: continues {parent.version_id} "
                         f"(update {update} since the last full retrain)")
    if update >= every_k:
        schedule = "every update is stateless" if every_k == 1 else f"every {_ordinal(every_k)} update is stateless"
        return _stateless(f"{schedule} (this is update {update} since the last full retrain)")
    return _stateful(parent, f"stateful: continues {parent.version_id} "
                     f"(update {update} of {every_k - 1} before the next full retrain)")


def _incompatibility(family: str, code_version: str, parent: ParentModel | None) -> str | None:
    """Why ``parent`` cannot be continued by the next model, or None when it can."""
    if parent is None:
        return "no champion to continue from"
    if parent.family != family:
        return (
            f"the champion {parent.version_id} is of the {parent.family} family, not {family}; nothing to continue from"
        )
    if parent.code_version != code_version:
        return f"model iteration: code version changed from {parent.code_version} to {code_version}"
    return None


def _stateless(reason: str) -> TrainingDecision:
    return TrainingDecision(mode=STATELESS, reason=reason, parent_version=None, updates_since_stateless=0)


def _stateful(parent: ParentModel, reason: str) -> TrainingDecision:
    return TrainingDecision(
        mode=STATEFUL,
        reason=reason,
        parent_version=parent.version_id,
        updates_since_stateless=parent.updates_since_stateless + 1,
    )


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"

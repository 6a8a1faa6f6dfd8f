"""Who gets what: deterministic, sticky assignment of users to the deployment plan's holdout, canary and experiments.

A user's bucket is a hash of a salt and the user id, so the same user lands in the same place on every request, in
every process and after every restart (Python's ``hash()`` is salted per process and would not). Each split has
its own salt, so being in one split says nothing about being in another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from trending_assets.lib.deployment_plan import SURFACES, DeploymentPlan, Experiment, Variant

BUCKETS = 10_000


def bucket(salt: str, user_id: str, buckets: int = BUCKETS) -> int:
    """The user's bucket in ``[0, buckets)`` for this salt: the first 8 bytes of sha256("salt:user") mod buckets."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def in_percent(salt: str, user_id: str, percent: float) -> bool:
    """Whether the user is among the first ``percent`` % of buckets for this salt."""
    return bucket(salt, user_id) < round(percent / 100 * BUCKETS)


def choose_variant(experiment: Experiment, user_id: str) -> Variant | None:
    """The user's variant, or None when the user is outside the experiment's allocation.

    Allocation and split hash with different salts, so the split among allocated users is the split among all.
    """
    if not in_percent(experiment.salt + ":allocation", user_id, experiment.allocation_percent):
        return None
    position = bucket(experiment.salt, user_id) / BUCKETS
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.weight
        if position < cumulative:
            return variant
    return experiment.variants[-1]  # weights sum to 1 only within float tolerance


@dataclass(frozen=True)
class Assignment:
    model_version: str
    role: str  # holdout | canary | champion | experiment
    experiment_id: str | None = None
    variant: str | None = None


def assign_model(plan: DeploymentPlan, user_id: str) -> Assignment:
    """The model version that serves this user, and why.

    In order: the holdout gets the champion; a running canary splits all remaining traffic into canary and control
    (so no "genres" experiment runs beside a canary: two model changes at once could not be told apart); then the
    first "genres" experiment that allocates the user; everyone else gets the champion.
    """
    if plan.holdout and in_percent(plan.holdout.salt, user_id, plan.holdout.percent):
        return Assignment(plan.champion, "holdout", None, "holdout")
    if plan.canary:
        canary = plan.canary
        if in_percent(canary.salt, user_id, canary.percent):
            return Assignment(canary.version_id, "canary", canary.experiment_id, "canary")
        return Assignment(plan.champion, "champion", canary.experiment_id, "control")
    chosen = assign_variant(plan, "genres", user_id)
    if chosen:
        experiment, variant = chosen
        assert variant.model_version is not None  # plan validation requires one on "genres" variants
        return Assignment(variant.model_version, "experiment", experiment.experiment_id, variant.name)
    return Assignment(plan.champion, "champion")


def assign_variant(plan: DeploymentPlan, surface: str, user_id: str) -> tuple[Experiment, Variant] | None:
    """The first experiment on ``surface`` that allocates the user, with the user's variant; None otherwise.

    Holdout users get None on every surface: the holdout measures the product without any experiment. For the
    model ("genres") use ``assign_model``, which also applies the canary.
    """
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; use one of {', '.join(SURFACES)}")
    if plan.holdout and in_percent(plan.holdout.salt, user_id, plan.holdout.percent):
        return None
    for experiment in plan.experiments:
        if experiment.surface == surface:
            variant = choose_variant(experiment, user_id)
            if variant:
                return experiment, variant
    return None

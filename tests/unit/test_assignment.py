"""Assignment: sticky across processes, the planned proportions, independent splits, and the rule order."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest
from scipy.stats import chi2_contingency

from trending_assets.lib import deployment_plan as dp
from trending_assets.lib.assignment import (
    BUCKETS,
    Assignment,
    assign_model,
    assign_variant,
    bucket,
    choose_variant,
    in_percent,
)
from trending_assets.lib.deployment_plan import Canary, Experiment, Holdout, ModelRef, Variant

USERS = [f"user-{i}" for i in range(20_000)]
MODELS = {v: ModelRef(v, "genre_xgb", f"/models/{v}", "0" * 64) for v in ("v1", "v2", "v3", "v4")}


def genres_experiment(weights: tuple[float, float] = (0.5, 0.5), salt: str = "salt-genres",
                      allocation: float = 100, experiment_id: str = "genres-ab") -> Experiment:
    return Experiment(experiment_id, "genres", salt, allocation,
                      (Variant("control", weights[0], model_version="v2"),
                       Variant("treatment", weights[1], model_version="v3")))


def tags_experiment(salt: str = "salt-tags", allocation: float = 100) -> Experiment:
    return Experiment("tags-ab", "vibe_tags", salt, allocation,
                      (Variant("rules", 0.5, generator="rules"), Variant("llm", 0.5, generator="llm")))


def assert_near(count: int, n: int, p: float) -> None:
    """Within 5 standard deviations of the binomial mean: a false alarm about once in 3.5 million runs."""
    assert abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)), (count, n * p)


def test_bucket_is_the_documented_hash() -> None:
    expected = int.from_bytes(hashlib.sha256(b"salt:user-7").digest()[:8], "big") % BUCKETS
    assert bucket("salt", "user-7") == expected
    assert bucket("salt", "user-7", buckets=7) == int.from_bytes(hashlib.sha256(b"salt:user-7").digest()[:8], "big") % 7
    assert all(0 <= bucket("s", u) < BUCKETS for u in USERS[:1000])
    assert not any(in_percent("s", u, 0) for u in USERS[:1000])
    assert all(in_percent("s", u, 100) for u in USERS[:1000])


def test_assignment_is_sticky_across_calls_and_processes() -> None:
    plan = dp.build("v1", MODELS, canary=None, experiments=(genres_experiment(), tags_experiment()),
                    holdout=Holdout(10, "salt-holdout"))
    users = USERS[:300]
    here = [dataclasses.asdict(assign_model(plan, u)) for u in users]
    assert here == [dataclasses.asdict(assign_model(plan, u)) for u in users]
    code = (
        "import dataclasses, json, sys\n"
        "from trending_assets.lib import deployment_plan as dp\n"
        "from trending_assets.lib.assignment import assign_model\n"
        "plan = dp.from_dict(json.loads(sys.stdin.read()))\n"
        f"print(json.dumps([dataclasses.asdict(assign_model(plan, f'user-{{i}}')) for i in range({len(users)})]))\n"
    )
    for seed in ("0", "4242"):  # a different str hash in each process: the answer must not depend on it
        result = subprocess.run([sys.executable, "-c", code], input=json.dumps(plan.to_dict()), text=True,
                                capture_output=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.1, 0.9)])
def test_variant_split_follows_the_weights(weights: tuple[float, float]) -> None:
    experiment = genres_experiment(weights)
    counts = Counter(choose_variant(experiment, u).name for u in USERS)
    assert_near(counts["control"], len(USERS), weights[0])
    assert counts["control"] + counts["treatment"] == len(USERS)


def test_allocation_leaves_the_rest_out() -> None:
    experiment = genres_experiment(allocation=30)
    chosen = [choose_variant(experiment, u) for u in USERS]
    allocated = [v for v in chosen if v is not None]
    assert_near(len(allocated), len(USERS), 0.3)
    assert_near(sum(v.name == "control" for v in allocated), len(allocated), 0.5)


def test_canary_and_holdout_get_their_percentages() -> None:
    canary_plan = dp.build("v1", MODELS, canary=Canary("canary-v4", "v4", 5, "salt-canary"))
    roles = Counter(assign_model(canary_plan, u).variant for u in USERS)
    assert_near(roles["canary"], len(USERS), 0.05)
    assert roles["canary"] + roles["control"] == len(USERS)

    holdout_plan = dp.build("v1", MODELS, holdout=Holdout(10, "salt-holdout"))
    roles = Counter(assign_model(holdout_plan, u).role for u in USERS)
    assert_near(roles["holdout"], len(USERS), 0.10)


def _independent(a: list[bool], b: list[bool]) -> float:
    """The p-value of a chi-squared test of independence on the 2x2 cross tab of a and b."""
    table = [[sum(x == i and y == j for x, y in zip(a, b)) for j in (False, True)] for i in (False, True)]
    return chi2_contingency(table).pvalue


def test_experiments_with_different_salts_are_independent() -> None:
    first, second = genres_experiment(salt="salt-one"), genres_experiment(salt="salt-two")
    a = [choose_variant(first, u).name == "control" for u in USERS]
    b = [choose_variant(second, u).name == "control" for u in USERS]
    assert _independent(a, b) > 0.001
    same = [choose_variant(genres_experiment(salt="salt-one"), u).name == "control" for u in USERS]
    assert _independent(a, same) < 1e-10  # the test can see dependence: one salt gives one split


def test_allocation_and_split_are_independent() -> None:
    experiment = genres_experiment(allocation=50)
    allocated = [in_percent(experiment.salt + ":allocation", u, 50) for u in USERS]
    first_arm = [bucket(experiment.salt, u) < BUCKETS // 2 for u in USERS]
    assert _independent(allocated, first_arm) > 0.001


def test_holdout_comes_before_canary_and_canary_before_experiments() -> None:
    plan = dp.build("v1", MODELS, canary=Canary("canary-v4", "v4", 50, "salt-canary"),
                    experiments=(genres_experiment(),), holdout=Holdout(50, "salt-holdout"))
    both = [u for u in USERS if in_percent("salt-holdout", u, 50) and in_percent("salt-canary", u, 50)]
    assert both
    assert {assign_model(plan, u) for u in both} == {Assignment("v1", "holdout", None, "holdout")}
    roles = Counter(assign_model(plan, u).role for u in USERS)
    assert set(roles) == {"holdout", "canary", "champion"}  # a running canary leaves no traffic to experiments
    control = next(u for u in USERS if not in_percent("salt-holdout", u, 50) and not in_percent("salt-canary", u, 50))
    assert assign_model(plan, control) == Assignment("v1", "champion", "canary-v4", "control")


def test_experiments_serve_their_variant_model() -> None:
    second = genres_experiment(allocation=50, experiment_id="second", salt="salt-second")
    plan = dp.build("v1", MODELS, experiments=(genres_experiment(allocation=50), second))
    assignments = [assign_model(plan, u) for u in USERS]
    by_experiment = Counter(a.experiment_id for a in assignments)
    assert_near(by_experiment["genres-ab"], len(USERS), 0.5)
    assert_near(by_experiment["second"], len(USERS), 0.25)  # the first experiment that allocates the user wins
    for a in assignments:
        if a.role == "experiment":
            assert a.model_version == {"control": "v2", "treatment": "v3"}[a.variant]
        else:
            assert a == Assignment("v1", "champion")


def test_assign_variant_for_vibe_tags() -> None:
    plan = dp.build("v1", MODELS, experiments=(genres_experiment(), tags_experiment(allocation=40)),
                    holdout=Holdout(10, "salt-holdout"))
    results = [assign_variant(plan, "vibe_tags", u) for u in USERS]
    assert {r[0].experiment_id for r in results if r} == {"tags-ab"}
    in_holdout = [in_percent("salt-holdout", u, 10) for u in USERS]
    assert all(r is None for r, held in zip(results, in_holdout) if held)  # the holdout sees no experiment
    assert_near(sum(r is not None for r in results), len(USERS), 0.9 * 0.4)
    with pytest.raises(ValueError, match="unknown surface"):
        assign_variant(plan, "homepage", "user-1")

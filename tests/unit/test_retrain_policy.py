"""The hybrid retraining policy: each reason to retrain from scratch, continuing the champion, and forcing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from trending_assets.lib.retrain_policy import ParentModel, TrainingDecision, decide

CHAMPION = ParentModel(
    version_id="xgboost-v3", family="xgboost", code_version="ab12", updates_since_stateless=1,
    window_end=date(2024, 3, 31),
)


def test_no_champion_means_a_full_retrain():
    assert decide("xgboost", "ab12", None) == TrainingDecision(
        mode="stateless", reason="no champion to continue from", parent_version=None, updates_since_stateless=0
    )


def test_a_champion_of_another_family_cannot_be_continued():
    decision = decide("transformer", "ab12", CHAMPION)

    assert decision.mode == "stateless" and decision.parent_version is None
    assert decision.reason == (
        "the champion xgboost-v3 is of the xgboost family, not transformer; nothing to continue from"
    )


def test_a_model_iteration_retrains_from_scratch():
    decision = decide("xgboost", "cd34", CHAMPION)

    assert (decision.mode, decision.reason) == ("stateless", "model iteration: code version changed from ab12 to cd34")


def test_every_kth_update_is_a_full_retrain():
    decision = decide("xgboost", "ab12", replace(CHAMPION, updates_since_stateless=4), every_k=5)

    assert decision == TrainingDecision(
        mode="stateless",
        reason="every 5th update is stateless (this is update 5 since the last full retrain)",
        parent_version=None,
        updates_since_stateless=0,
    )


def test_otherwise_the_champion_is_continued():
    assert decide("xgboost", "ab12", CHAMPION, every_k=5) == TrainingDecision(
        mode="stateful",
        reason="stateful: continues xgboost-v3 (update 2 of 4 before the next full retrain)",
        parent_version="xgboost-v3",
        updates_since_stateless=2,
    )


def test_a_lineage_alternates_k_minus_one_stateful_updates_with_a_full_retrain():
    parent, modes = None, []
    for day in range(1, 10):
        decision = decide("xgboost", "ab12", parent, every_k=3)
        modes.append(decision.mode)
        parent = ParentModel(f"xgboost-v{day}", "xgboost", "ab12", decision.updates_since_stateless, date(2024, 1, day))

    assert modes == ["stateless", "stateful", "stateful"] * 3


def test_a_lowered_every_k_retrains_a_long_lineage_at_once():
    decision = decide("xgboost", "ab12", replace(CHAMPION, updates_since_stateless=6), every_k=3)

    assert decision.reason == "every 3rd update is stateless (this is update 7 since the last full retrain)"


@pytest.mark.parametrize(("every_k", "words"), [(2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
                                                (13, "13th"), (21, "21st"), (22, "22nd"), (101, "101st")])
def test_the_schedule_reads_as_an_ordinal(every_k, words):
    decision = decide("xgboost", "ab12", replace(CHAMPION, updates_since_stateless=every_k - 1), every_k=every_k)

    assert decision.reason.startswith(f"every {words} update is stateless")


def test_every_k_of_one_always_retrains_from_scratch():
    decision = decide("xgboost", "ab12", replace(CHAMPION, updates_since_stateless=0), every_k=1)

    assert (decision.mode, decision.reason) == (
        "stateless", "every update is stateless (this is update 1 since the last full retrain)",
    )


def test_forced_stateless_wins_over_a_compatible_champion():
    assert decide("xgboost", "ab12", CHAMPION, force="stateless") == TrainingDecision(
        mode="stateless", reason="forced stateless by config", parent_version=None, updates_since_stateless=0
    )


def test_forced_stateful_skips_the_scheduled_full_retrain():
    decision = decide("xgboost", "ab12", replace(CHAMPION, updates_since_stateless=4), every_k=5, force="stateful")

    assert decision == TrainingDecision(
        mode="stateful",
        reason="forced stateful by config: continues xgboost-v3 (update 5 since the last full retrain)",
        parent_version="xgboost-v3",
        updates_since_stateless=5,
    )


@pytest.mark.parametrize(
    ("family", "code_version", "parent", "why"),
    [
        ("xgboost", "ab12", None, "no champion to continue from"),
        ("transformer", "ab12", CHAMPION, "is of the xgboost family, not transformer"),
        ("xgboost", "cd34", CHAMPION, "code version changed from ab12 to cd34"),
    ],
)
def test_forced_stateful_without_a_compatible_champion_is_an_error(family, code_version, parent, why):
    with pytest.raises(ValueError, match=f"forced stateful by config, but .*{why}.*remove the force"):
        decide(family, code_version, parent, force="stateful")


def test_bad_settings_are_refused_with_the_value():
    with pytest.raises(ValueError, match="every_k must be at least 1 .*got 0"):
        decide("xgboost", "ab12", CHAMPION, every_k=0)
    with pytest.raises(ValueError, match="force 'warm' is not one of: stateless, stateful"):
        decide("xgboost", "ab12", CHAMPION, force="warm")
    with pytest.raises(ValueError, match="xgboost-v3: updates_since_stateless .* got -1"):
        replace(CHAMPION, updates_since_stateless=-1)

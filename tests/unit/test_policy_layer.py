"""The policy layer: per-genre tag thresholds learned by bandits from labelled decisions, on simulated traffic.

Comedy's model stays well separated at 0.5 throughout. Documentary's starts the same, then turns under-confident:
true documentaries score 0.25-0.45 and the rest 0-0.3, so 0.3 becomes the best threshold (accuracy 0.9 against
0.6 for 0.5). Because every threshold's reward can be computed from a movie's probability and label, the
off-policy estimates are checked against the exact value.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trending_assets.lib.bandit_allocation import sticky_arm
from trending_assets.lib.bandits import ThompsonSampling
from trending_assets.lib.off_policy import gate
from trending_assets.lib.policy_layer import (
    DEFAULT_THRESHOLDS,
    GenreThresholds,
    ThresholdDecision,
    learn_state,
    logged_value,
    off_policy_value,
)

GENRES = ["comedy", "documentary"]


def movie(rng: np.random.Generator, under_confident: bool) -> tuple[float, bool]:
    """A movie's model probability for one genre and whether it truly has the genre (40% do)."""
    member = bool(rng.random() < 0.4)
    if under_confident:
        return (rng.uniform(0.25, 0.45) if member else rng.uniform(0.0, 0.3)), member
    return (rng.uniform(0.5, 0.95) if member else rng.uniform(0.05, 0.5)), member


def serve(layer: GenreThresholds, period: int, rng: np.random.Generator, shifted: bool, impressions: int = 300):
    """One period of impressions decided by the layer, each paired with the movie's true genres."""
    labelled = []
    for _ in range(impressions):
        (comedy, is_comedy), (documentary, is_documentary) = movie(rng, False), movie(rng, shifted)
        decision = layer.decide(f"user-{rng.integers(500)}", f"day-{period}",
                                {"comedy": comedy, "documentary": documentary})
        labelled.append((decision, {g for g, member in zip(GENRES, (is_comedy, is_documentary)) if member}))
    return labelled


def test_the_learned_threshold_moves_down_after_the_model_turns_under_confident_and_stays_for_a_stable_genre():
    layer, rng = GenreThresholds(GENRES, draws=2000, warmup=10), np.random.default_rng(0)
    for period in range(10):
        layer.learn(serve(layer, period, rng, shifted=False))
    assert layer.current_thresholds() == {"comedy": 0.5, "documentary": 0.5}
    for period in range(10, 40):
        layer.learn(serve(layer, period, rng, shifted=True))
    assert layer.current_thresholds() == {"comedy": 0.5, "documentary": 0.3}
    assert layer.distribution("documentary")[0.3] > 0.8  # and it now serves it to most users
    assert layer.summary_lines() == ["comedy: threshold 0.50 (was 0.50), 12000 labelled decisions",
                                     "documentary: threshold 0.30 (was 0.50), 12000 labelled decisions"]


def test_decisions_log_the_bandits_propensities_and_are_sticky_per_user_period_and_genre():
    layer, rng = GenreThresholds(GENRES, draws=2000, warmup=5), np.random.default_rng(1)
    layer.learn(serve(layer, 0, rng, shifted=True))
    for genre in GENRES:  # the layer's distribution is the bandit's own
        bandit = ThompsonSampling.from_state(layer.state()["genres"][genre])
        assert list(layer.distribution(genre).values()) == bandit.probabilities().tolist()
    monday = [layer.decide(f"user-{i}", "day-1", {"comedy": 0.45, "documentary": 0.35}) for i in range(2000)]
    for decision in monday:
        for genre, choice in decision.choices.items():
            assert choice.propensity == layer.distribution(genre)[choice.threshold]
            assert choice.shown == (choice.probability >= choice.threshold)
            arms = {repr(t): p for t, p in layer.distribution(genre).items()}
            assert float(sticky_arm(f"genre-thresholds:{genre}", decision.user_id, arms, "day-1")) == choice.threshold
    again = [layer.decide(f"user-{i}", "day-1", {"comedy": 0.9, "documentary": 0.1}) for i in range(2000)]
    thresholds = [{g: c.threshold for g, c in d.choices.items()} for d in monday]
    assert thresholds == [{g: c.threshold for g, c in d.choices.items()} for d in again]
    tuesday = [layer.decide(f"user-{i}", "day-2", {"comedy": 0.45, "documentary": 0.35}) for i in range(2000)]
    assert thresholds != [{g: c.threshold for g, c in d.choices.items()} for d in tuesday]
    comedy_share = np.mean([t["comedy"] == 0.5 for t in thresholds])
    assert comedy_share == pytest.approx(layer.distribution("comedy")[0.5], abs=0.05)


def test_a_decision_round_trips_through_its_json_payload_and_a_tampered_one_is_refused():
    layer = GenreThresholds(GENRES, draws=500)
    decision = layer.decide("user-7", "2024-06-03", {"comedy": np.float32(0.62), "documentary": 0.21})
    restored = ThresholdDecision.from_payload(json.loads(json.dumps(decision.to_payload())))
    assert restored == decision and restored.shown == decision.shown
    payload = decision.to_payload()
    payload["genres"]["comedy"]["shown"] = not payload["genres"]["comedy"]["shown"]
    with pytest.raises(ValueError, match="inconsistent logged decision for 'comedy'"):
        ThresholdDecision.from_payload(payload)
    with pytest.raises(ValueError, match="not a threshold decision payload"):
        ThresholdDecision.from_payload({"user_id": "u", "genres": {}})


def test_state_round_trips_through_json_and_reset_returns_to_the_prior():
    layer, rng = GenreThresholds(GENRES, draws=1000, warmup=5, floor=0.2), np.random.default_rng(2)
    layer.learn(serve(layer, 0, rng, shifted=True))
    restored = GenreThresholds.from_state(json.loads(json.dumps(layer.state())))
    assert restored.state() == layer.state()
    assert restored.current_thresholds() == layer.current_thresholds()
    probabilities = {"comedy": 0.55, "documentary": 0.33}
    assert [restored.decide(f"u{i}", "d", probabilities) for i in range(50)] == [
        layer.decide(f"u{i}", "d", probabilities) for i in range(50)]
    layer.reset()
    assert layer.state() == GenreThresholds(GENRES, draws=1000, warmup=5, floor=0.2).state()
    assert layer.current_thresholds() == {"comedy": 0.5, "documentary": 0.5}  # the prior's tie goes to 0.5
    assert list(layer.distribution("documentary").values()) == [1 / 6] * 6  # warming up again


def test_learning_is_a_pure_function_of_the_labelled_logs_whatever_their_order():
    prior = GenreThresholds(GENRES, draws=500).state()
    logs = serve(GenreThresholds.from_state(prior), 0, np.random.default_rng(3), shifted=True)
    untouched = json.dumps(prior)
    learned = learn_state(prior, logs)
    assert json.dumps(prior) == untouched
    assert learn_state(prior, reversed(logs)) == learned
    assert learn_state(learn_state(prior, logs[:100]), logs[100:]) == learned


def test_off_policy_value_of_always_one_threshold_matches_its_exact_accuracy():
    layer, rng = GenreThresholds(GENRES, draws=500, floor=0.5, warmup=5), np.random.default_rng(4)
    logs = []
    for period in range(8):
        batch = serve(layer, period, rng, shifted=True)
        layer.learn(batch)
        logs += batch
    # A threshold's reward is known for every logged movie, so each fixed threshold has an exact value to check.
    exact = {t: np.mean([(d.choices["documentary"].probability >= t) == ("documentary" in true) for d, true in logs])
             for t in DEFAULT_THRESHOLDS}
    for estimator in ("ips", "snips", "doubly_robust"):
        estimate = off_policy_value(logs, "documentary", {0.4: 1.0}, estimator=estimator, n_resamples=300)
        assert estimate.ci_low <= exact[0.4] <= estimate.ci_high
        if estimator != "ips":  # plain IPS is right on average but noisy: 0.4 got only the floor's traffic
            assert estimate.value == pytest.approx(exact[0.4], abs=0.04)
    candidate = layer.distribution("documentary")  # another state's distribution is a target too
    estimate = off_policy_value(logs, "documentary", candidate, n_resamples=300)
    assert estimate.value == pytest.approx(sum(p * exact[t] for t, p in candidate.items()), abs=0.04)
    logged = logged_value(logs, "documentary", n_resamples=300)
    assert gate(off_policy_value(logs, "documentary", {0.3: 1.0}, n_resamples=300), logged).passed
    assert not gate(off_policy_value(logs, "documentary", {0.6: 1.0}, n_resamples=300), logged).passed


def test_bad_input_is_refused_with_clear_errors():
    layer = GenreThresholds(GENRES, draws=500)
    with pytest.raises(ValueError, match=r"genres \['horror'\] are not in the policy layer"):
        layer.decide("u", "d", {"comedy": 0.5, "horror": 0.7})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        layer.decide("u", "d", {"comedy": 1.5})
    for thresholds in ([], [0.5], [0.0, 0.5], [0.5, 1.0], [0.3, 0.3]):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            GenreThresholds(GENRES, thresholds=thresholds)
    other, before = GenreThresholds(GENRES, thresholds=(0.35, 0.55), draws=500), layer.state()
    with pytest.raises(ValueError, match="not one of this layer's"):
        layer.learn([(layer.decide("u", "d", {"comedy": 0.5}), {"comedy"}),
                     (other.decide("u", "d", {"comedy": 0.5}), {"comedy"})])
    assert layer.state() == before  # a bad batch is learned not at all, not in part
    with pytest.raises(ValueError, match="unknown estimator"):
        off_policy_value([], "comedy", {0.5: 1.0}, estimator="direct")
    with pytest.raises(ValueError, match="summing to 1"):
        off_policy_value([], "comedy", {0.5: 0.5}, thresholds=DEFAULT_THRESHOLDS)
    with pytest.raises(ValueError, match="not a policy layer state"):
        GenreThresholds.from_state({"genres": {}})


def test_a_genre_whose_thresholds_are_all_right_keeps_the_baseline_however_often_each_was_drawn():
    layer = GenreThresholds(["western"], warmup=0)
    for threshold, times in zip(DEFAULT_THRESHOLDS, (700, 650, 900, 600, 800, 750)):
        layer.add_evidence("western", threshold, times, float(times))  # every decision right: no movie is a western
    assert layer.current_thresholds() == {"western": 0.5}
    layer.add_evidence("western", 0.3, 400, 300.0)  # 0.3 now measurably worse: the baseline stays
    assert layer.current_thresholds() == {"western": 0.5}
    layer.add_evidence("western", 0.5, 400, 300.0)  # the baseline too: the most accurate arm, 0.4, is now ahead
    assert layer.current_thresholds() == {"western": 0.4}

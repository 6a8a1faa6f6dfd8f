"""Text and embedding drift by domain classifier, on constructed overviews and a cheap fake embedder."""

import time

import numpy as np
import pytest

from trending_assets.lib.text_drift import (
    chance_auc_cutoff,
    domain_classifier_auc,
    embedding_drift,
    minilm_embedder,
    text_drift,
)

COMMON = ["a", "story", "about", "family", "city", "night", "secret", "journey", "friends", "war"]
SCIENCE_FICTION = ["spaceship", "alien", "planet", "robot", "galaxy", "laser", "android", "orbit"]
NEW_SCIENCE_FICTION = ["quantum", "simulation", "neural", "cyborg", "wormhole", "nanite", "hologram", "singularity"]


def overviews(rng: np.random.Generator, n: int, genre_words: list[str]) -> list[str]:
    """Overviews of eight common words and two genre words each."""
    return [" ".join([*rng.choice(COMMON, 8), *rng.choice(genre_words, 2)]) for _ in range(n)]


def fake_embed(texts: list[str]) -> np.ndarray:
    """A stand-in for MiniLM: each word adds a fixed random vector, so texts sharing words lie close together."""
    vectors = {}
    for word in sorted({w for text in texts for w in text.split()}):
        vectors[word] = np.random.default_rng(sum(map(ord, word)) * 7919 + len(word)).normal(size=16)
    return np.array([np.mean([vectors[w] for w in text.split()], axis=0) for text in texts])


def test_auc_is_near_chance_for_one_vocabulary_and_high_when_it_changes():
    rng = np.random.default_rng(0)
    same, n = domain_classifier_auc(overviews(rng, 200, SCIENCE_FICTION), overviews(rng, 200, SCIENCE_FICTION))
    changed, _ = domain_classifier_auc(overviews(rng, 200, SCIENCE_FICTION),
                                       overviews(rng, 200, NEW_SCIENCE_FICTION))
    assert n == 400
    assert same == pytest.approx(0.5, abs=0.08)
    assert changed > 0.95


def test_text_drift_verdicts_and_their_threshold():
    rng = np.random.default_rng(1)
    reference = overviews(rng, 150, SCIENCE_FICTION)
    stable = text_drift(reference, overviews(rng, 150, SCIENCE_FICTION))
    drifted = text_drift(reference, overviews(rng, 150, NEW_SCIENCE_FICTION))
    assert stable.drifted is False and drifted.drifted
    assert drifted.kind == "text" and drifted.statistic == drifted.statistic  # a number, not NaN
    # With 150 texts a side chance alone reaches 0.55 too often, so the cut-off rises above it.
    assert drifted.threshold == pytest.approx(chance_auc_cutoff(150, 150)) and drifted.threshold > 0.55


def test_false_alarms_on_text_are_rare():
    alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(500 + seed)
        alarms += bool(text_drift(overviews(rng, 100, SCIENCE_FICTION), overviews(rng, 100, SCIENCE_FICTION),
                                  seed=seed).drifted)
    assert alarms <= 2


def test_too_few_or_empty_texts_are_insufficient_never_an_error():
    rng = np.random.default_rng(2)
    reference = overviews(rng, 100, SCIENCE_FICTION)
    assert domain_classifier_auc(reference, []) == (None, 100)
    for current in ([], ["", None, "  "] * 20, overviews(rng, 10, NEW_SCIENCE_FICTION)):
        result = text_drift(reference, current)
        assert result.status == "insufficient data" and result.drifted is None and "at least 30" in result.reason
    assert text_drift(reference, ["", None] * 20 + reference).n_missing_current == 40


def test_embedding_drift_with_a_fake_embedder():
    rng = np.random.default_rng(3)
    reference = overviews(rng, 150, SCIENCE_FICTION)
    stable = embedding_drift(reference, overviews(rng, 150, SCIENCE_FICTION), fake_embed)
    drifted = embedding_drift(reference, overviews(rng, 150, NEW_SCIENCE_FICTION), fake_embed)
    assert stable.drifted is False and drifted.drifted and drifted.kind == "embedding"
    assert drifted.extras["mean_embedding_distance"] > 2 * stable.extras["mean_embedding_distance"]
    assert embedding_drift(reference, [], fake_embed).drifted is None


def test_minilm_embeds_offline_into_unit_vectors():
    started = time.perf_counter()
    embed = minilm_embedder(max_length=32, batch_size=8)
    vectors = embed(overviews(np.random.default_rng(4), 20, SCIENCE_FICTION))
    assert vectors.shape == (20, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(20), abs=1e-5)
    assert time.perf_counter() - started < 10

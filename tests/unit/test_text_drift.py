"""Text drift (domain classifier and word counts) and embedding drift, on constructed overviews and a fake embedder."""

import re
import time

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.drift_features import VOCABULARY_FEATURE, movie_drift, movie_vocabulary_drift
from trending_assets.lib.text_drift import (
    chance_auc_cutoff,
    domain_classifier_auc,
    embedding_drift,
    minilm_embedder,
    text_drift,
    vocabulary_drift,
)

COMMON = ["a", "story", "about", "family", "city", "night", "secret", "journey", "friends", "war"]
SCIENCE_FICTION = ["spaceship", "alien", "planet", "robot", "galaxy", "laser", "android", "orbit"]
NEW_SCIENCE_FICTION = ["quantum", "simulation", "neural", "cyborg", "wormhole", "nanite", "hologram", "singularity"]
DRAMA = ["grief", "divorce", "funeral", "inheritance", "widow", "courtroom", "addiction", "regret"]
# A word named in a vocabulary verdict's reason, with its counts: 'hologram' 5/60 vs 0/420.
REASON_WORD = re.compile(r"'(\w+)' (\d+)/(\d+) vs (\d+)/(\d+)")


def overviews(rng: np.random.Generator, n: int, genre_words: list[str]) -> list[str]:
    """Overviews of eight common words and two genre words each."""
    return [" ".join([*rng.choice(COMMON, 8), *rng.choice(genre_words, 2)]) for _ in range(n)]


def mixed(rng: np.random.Generator, n: int, genre_words: list[str], n_genre: int) -> list[str]:
    """``n`` overviews, ``n_genre`` of them with ``genre_words`` and the rest drama: a small genre among others."""
    return overviews(rng, n - n_genre, DRAMA) + overviews(rng, n_genre, genre_words)


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


def test_vocabulary_drift_finds_the_new_words_of_a_small_genre():
    # A third of a 60-text day speaks a new vocabulary: each new word in about 5 texts, none in 420 reference texts.
    rng = np.random.default_rng(10)
    result = vocabulary_drift(mixed(rng, 420, SCIENCE_FICTION, 40), mixed(rng, 60, NEW_SCIENCE_FICTION, 20))
    assert result.drifted and result.status == "ok"
    assert (result.kind, result.test, result.threshold) == ("text", "token_frequency", 0.05)
    assert result.p_value < result.threshold
    assert result.statistic == result.extras["n_significant"] >= 2
    assert result.extras["min_adjusted_p"] <= result.p_value
    named = REASON_WORD.findall(result.reason)
    assert named and {word for word, *_ in named} <= set(NEW_SCIENCE_FICTION)
    assert all(int(n_cur) >= 2 and (int(cur), int(ref_n), int(ref)) == (60, 0, 420)
               for _, n_cur, cur, ref_n, ref in named)


def test_vocabulary_drift_raises_no_alarm_on_one_distribution():
    alarms, significant = [], 0
    for seed in range(30):
        rng = np.random.default_rng(600 + seed)
        result = vocabulary_drift(mixed(rng, 420, SCIENCE_FICTION, 40), mixed(rng, 60, SCIENCE_FICTION, 6))
        assert result.status == "ok" and result.extras["n_tokens_tested"] == 26  # 10 common + 16 genre words
        alarms.append(result.drifted)
        significant += result.extras["n_significant"]
    assert not any(alarms) and significant <= 1


def test_only_words_that_became_more_frequent_count():
    # Science fiction (300 of 420 reference texts) keeps its share but loses its words: they fall from about 70
    # texts to none and nothing rises, so no drift. The mirror image, the words appearing, is drift.
    rng = np.random.default_rng(11)

    def wordless(n: int) -> list[str]:
        return [" ".join(rng.choice(COMMON, 8)) for _ in range(n)]

    fallen = vocabulary_drift(mixed(rng, 420, SCIENCE_FICTION, 300), overviews(rng, 17, DRAMA) + wordless(43))
    assert fallen.drifted is False and fallen.extras["n_significant"] == 0
    risen = vocabulary_drift(overviews(rng, 120, DRAMA) + wordless(300), mixed(rng, 60, SCIENCE_FICTION, 43))
    assert risen.drifted and risen.extras["n_significant"] >= len(SCIENCE_FICTION)
    assert {w for w, *_ in REASON_WORD.findall(risen.reason)} <= set(SCIENCE_FICTION)


def test_one_surging_word_is_reported_but_two_are_needed_for_drift():
    rng = np.random.default_rng(12)
    reference = mixed(rng, 420, SCIENCE_FICTION, 40)
    current = [f"{text} Hologram." if i < 20 else text for i, text in enumerate(mixed(rng, 60, SCIENCE_FICTION, 6))]
    result = vocabulary_drift(reference, current)
    assert result.drifted is False and result.extras["n_significant"] == 1 == result.statistic
    assert "'hologram' 20/60 vs 0/420" in result.reason and "2 needed for drift" in result.reason
    assert vocabulary_drift(reference, current, min_tokens=1).drifted
    with pytest.raises(ValueError, match="min_tokens"):
        vocabulary_drift(reference, current, min_tokens=0)


def test_unseen_words_in_a_single_text_are_not_tested():
    # Each current text names someone new: 60 words unseen in the reference, but one text each is no evidence (the
    # smallest p-value one text allows is 60/480), so they are left out of the correction rather than diluting it.
    rng = np.random.default_rng(13)
    reference = mixed(rng, 420, SCIENCE_FICTION, 40)
    current = [f"{text} Name{i}" for i, text in enumerate(mixed(rng, 60, SCIENCE_FICTION, 6))]
    result = vocabulary_drift(reference, current)
    assert result.drifted is False
    assert result.extras["n_tokens"] - result.extras["n_tokens_tested"] == 60


def test_words_are_lowercased_and_split_on_punctuation():
    reference = ["a quiet story about the city"] * 40
    result = vocabulary_drift(reference, ["A quiet STORY, about the City: Hologram! cyborg."] * 40)
    assert result.extras["n_tokens"] == 8 and result.extras["n_significant"] == 2 and result.drifted
    assert vocabulary_drift(reference, ["A Quiet Story About The City."] * 40).drifted is False


def test_vocabulary_drift_with_too_few_or_empty_texts_is_insufficient_never_an_error():
    rng = np.random.default_rng(14)
    reference = mixed(rng, 420, SCIENCE_FICTION, 40)
    for other in ([], ["", None, "  "] * 20, [None] * 100, overviews(rng, 29, NEW_SCIENCE_FICTION)):
        for ref, cur in ((reference, other), (other, reference)):
            result = vocabulary_drift(ref, cur)
            assert result.status == "insufficient data" and result.drifted is None and result.statistic is None
            assert "at least 30" in result.reason
    assert vocabulary_drift(reference, ["", None] * 20 + reference[:60]).n_missing_current == 40
    # Texts without a single word are judged, with nothing to test: no drift.
    wordless = vocabulary_drift(["!!!"] * 40, ["?"] * 40)
    assert wordless.drifted is False and wordless.extras["n_tokens"] == 0 and wordless.p_value == 1.0


def test_vocabulary_drift_is_fast_on_100k_texts_a_side():
    rng = np.random.default_rng(15)
    words = np.array(COMMON + SCIENCE_FICTION + NEW_SCIENCE_FICTION + [f"name{i}" for i in range(20_000)])
    ref_ids = np.c_[rng.integers(0, 18, (100_000, 12)), rng.integers(26, words.size, (100_000, 3))]
    cur_ids = np.c_[rng.integers(0, 26, (100_000, 12)), rng.integers(26, words.size, (100_000, 3))]
    reference, current = ([" ".join(row) for row in words[ids]] for ids in (ref_ids, cur_ids))
    started = time.perf_counter()
    result = vocabulary_drift(reference, current)
    assert time.perf_counter() - started < 15
    assert result.drifted and result.extras["n_significant"] == 8  # the new words, nothing else


def test_movie_vocabulary_drift_reads_title_and_overview_outside_the_dataset_share():
    rng = np.random.default_rng(16)
    reference = pl.DataFrame({"title": ["Silent Harbor"] * 420, "overview": mixed(rng, 420, SCIENCE_FICTION, 40)})
    current = pl.DataFrame({"title": ["Hologram Cyborg"] * 30 + [None] * 30,
                            "overview": mixed(rng, 60, SCIENCE_FICTION, 6)})
    result = movie_vocabulary_drift(reference, current)
    assert result.feature == VOCABULARY_FEATURE and result.drifted
    assert {w for w, *_ in REASON_WORD.findall(result.reason)} == {"hologram", "cyborg"}
    assert VOCABULARY_FEATURE not in {f.feature for f in movie_drift(reference, current).features}
    assert movie_vocabulary_drift(reference, pl.DataFrame()).status == "insufficient data"

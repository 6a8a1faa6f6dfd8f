"""Offline evaluation of a candidate: what it is compared with (the prevalence baseline, the champion, its parent),
on which datasets, the headline numbers it reports, and the report a person reads.

The models are test doubles of the ``GenreModel`` protocol: an oracle that reads the true genres, and models that
give every movie the same probabilities. What is under test is the bookkeeping around them, not learning.
"""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.evaluation import BASELINE
from trending_assets.lib.evaluation_report import evaluation_report
from trending_assets.lib.features import label_matrix
from trending_assets.lib.genre_model import to_labels
from trending_assets.lib.offline_evaluation import BACKTEST, STATIC_TEST, Dataset, evaluate_candidate
from trending_assets.lib.reports import PNG_SIGNATURE

GENRES = ("action", "comedy", "horror")
N_BOOT = 200


def movies(n: int, seed: int) -> pl.DataFrame:
    """Movies with one or two genres, action the most common, and the columns the standard slices read."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        genres = ["action"] if rng.random() < 0.6 else []
        genres += rng.sample(["comedy", "horror"], 1 if genres == [] or rng.random() < 0.3 else 0)
        rows.append({"movie_id": f"s{seed}-{i}", "title": f"Movie {i}", "overview": "words " * (i % 30),
                     "genres": genres, "release_year": 1990 + i % 30, "source": "tmdb"})
    return pl.DataFrame(rows, schema_overrides={"genres": pl.List(pl.String)})


class Oracle:
    """A perfect model: it reads the true genres off the frame."""

    def __init__(self, genres: tuple[str, ...] = GENRES):
        self.genres = genres

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return label_matrix(frame, self.genres).astype(np.float32)


class Constant:
    """The same probabilities for every movie."""

    def __init__(self, probabilities: list[float], genres: tuple[str, ...] = GENRES):
        self.genres, self.probabilities = genres, np.asarray(probabilities, dtype=np.float32)

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.tile(self.probabilities, (frame.height, 1))


ALWAYS_ACTION = Constant([0.9, 0.2, 0.1])
TRAINING_LABELS = label_matrix(movies(100, seed=0), GENRES)


@pytest.fixture(scope="module")
def datasets() -> list[Dataset]:
    return [Dataset(STATIC_TEST, "w-static", movies(120, seed=1)), Dataset(BACKTEST, "w-backtest", movies(80, seed=2))]


def compared(result) -> set[tuple[str, str, str]]:
    return {(c.reference, c.dataset, c.metric) for c in result.comparisons}


# -- references --------------------------------------------------------------------------------------------

def test_without_a_champion_the_candidate_faces_the_baseline_on_the_static_test_set_only(datasets):
    result = evaluate_candidate("xgboost-v1", Oracle(), datasets, None, None, TRAINING_LABELS, n_boot=N_BOOT)

    assert result.reference == BASELINE
    assert compared(result) == {(BASELINE, STATIC_TEST, "macro_f1"), (BASELINE, STATIC_TEST, "micro_f1")}
    gain = result.comparison(BASELINE, STATIC_TEST)
    assert gain.low > 0 and gain.diff > 0.3 and gain.n == 120 and gain.window_id == "w-static"
    # The baseline is still scored everywhere, so its numbers sit beside the candidate's in the report.
    assert set(result.rows[BASELINE]["dataset"].unique()) == {STATIC_TEST, BACKTEST}


def test_a_model_no_better_than_the_baseline_does_not_beat_it(datasets):
    result = evaluate_candidate("xgboost-v1", ALWAYS_ACTION, datasets, None, None, TRAINING_LABELS, n_boot=N_BOOT)
    gain = result.comparison(BASELINE, STATIC_TEST)
    assert gain.diff == 0 and gain.low <= 0  # the baseline also predicts action for every movie


def test_with_a_champion_the_candidate_faces_it_on_every_dataset(datasets):
    result = evaluate_candidate("xgboost-v2", Oracle(), datasets, "xgboost-v1", ALWAYS_ACTION, TRAINING_LABELS,
                                n_boot=N_BOOT)

    assert result.reference == "xgboost-v1"
    assert compared(result) == {("xgboost-v1", d, m) for d in (STATIC_TEST, BACKTEST) for m in ("macro_f1", "micro_f1")}
    assert result.comparison("xgboost-v1", BACKTEST, "micro_f1").low > 0
    assert set(result.rows) == {"xgboost-v2", "xgboost-v1"}


def test_a_parent_other_than_the_champion_is_compared_too_which_measures_forgetting(datasets):
    forgetful = ALWAYS_ACTION
    result = evaluate_candidate("xgboost-v3", forgetful, datasets, "transformer-v1", Constant([0.9, 0.9, 0.1]),
                                TRAINING_LABELS, parent=("xgboost-v2", Oracle()), n_boot=N_BOOT)

    assert result.reference == "transformer-v1"
    assert set(result.rows) == {"xgboost-v3", "transformer-v1", "xgboost-v2"}
    forgetting = result.comparison("xgboost-v2", STATIC_TEST)
    assert forgetting.high < 0  # the child lost what its parent knew
    lost = result.headline["static_test_forgetting_macro_f1"]
    assert lost > 0 and lost == pytest.approx(-forgetting.diff, abs=1e-4)
    assert result.comparison("transformer-v1", STATIC_TEST) is not None


def test_a_parent_that_is_the_champion_is_compared_once(datasets):
    result = evaluate_candidate("xgboost-v2", Oracle(), datasets, "xgboost-v1", ALWAYS_ACTION, TRAINING_LABELS,
                                parent=("xgboost-v1", ALWAYS_ACTION), n_boot=N_BOOT)

    assert set(result.rows) == {"xgboost-v2", "xgboost-v1"}
    assert len(result.comparisons) == 4  # two datasets, two metrics
    assert result.headline["static_test_forgetting_macro_f1"] < 0  # the oracle child improved on its parent


def test_a_reference_over_other_genres_cannot_be_compared(datasets):
    other_genres = Constant([0.9, 0.2, 0.1], genres=("action", "horror", "comedy"))
    with pytest.raises(ValueError, match="transformer-v1 predicts genres .* they cannot be compared"):
        evaluate_candidate("xgboost-v2", Oracle(), datasets, "transformer-v1", other_genres, TRAINING_LABELS,
                           n_boot=N_BOOT)


# -- headline and datasets ---------------------------------------------------------------------------------

def test_headline_names_each_dataset_and_metric(datasets):
    result = evaluate_candidate("xgboost-v2", Oracle(), datasets, "xgboost-v1", ALWAYS_ACTION, TRAINING_LABELS,
                                n_boot=N_BOOT)

    assert result.headline["static_test_macro_f1"] == 1.0 == result.headline["backtest_micro_f1"]
    assert set(result.headline) == {f"{dataset}_{metric}" for dataset in (STATIC_TEST, BACKTEST)
                                    for metric in ("micro_f1", "macro_f1", "samples_f1", "exact_match")}
    assert result.per_genre_f1("xgboost-v2", STATIC_TEST) == {genre: 1.0 for genre in GENRES}
    assert result.support(STATIC_TEST) == dict(zip(GENRES, label_matrix(datasets[0].frame, GENRES).sum(axis=0)))


def test_an_empty_dataset_is_skipped(datasets):
    static_test, backtest = datasets
    empty = Dataset(BACKTEST, "w-empty", backtest.frame.clear())

    result = evaluate_candidate("xgboost-v2", Oracle(), [static_test, empty], "xgboost-v1", ALWAYS_ACTION,
                                TRAINING_LABELS, n_boot=N_BOOT)

    assert {c.dataset for c in result.comparisons} == {STATIC_TEST}
    assert not any(key.startswith("backtest_") for key in result.headline)
    assert set(result.rows["xgboost-v2"]["dataset"].unique()) == {STATIC_TEST}


# -- the report --------------------------------------------------------------------------------------------

def test_report_writes_markdown_and_a_per_genre_plot(datasets, tmp_path):
    result = evaluate_candidate("xgboost-v2", Oracle(), datasets, "xgboost-v1", ALWAYS_ACTION, TRAINING_LABELS,
                                n_boot=N_BOOT)

    report = evaluation_report(result, tmp_path)

    assert report.plot_path == tmp_path / "per_genre_f1.png"
    assert report.plot_path.read_bytes().startswith(PNG_SIGNATURE)
    assert report.markdown.startswith("## xgboost-v2 vs xgboost-v1")
    assert "### Paired bootstrap: candidate minus reference (95% CI)" in report.markdown
    table = report.markdown.split("### Paired bootstrap")[1].split("###")[0]
    assert table.count("| xgboost-v1 |") == 4  # one row per dataset and metric
    assert "](data:image/png;base64," in report.markdown
    on_disk = (tmp_path / "report.md").read_text()
    assert "![per-genre F1](per_genre_f1.png)" in on_disk and "data:image/png" not in on_disk
    assert "### Per genre (static test set)" in on_disk and "reference_f1" in on_disk


def test_report_against_the_baseline(datasets, tmp_path):
    result = evaluate_candidate("xgboost-v1", Oracle(), datasets, None, None, TRAINING_LABELS, n_boot=N_BOOT)

    report = evaluation_report(result, tmp_path)

    assert report.markdown.startswith(f"## xgboost-v1 vs {BASELINE}")
    assert (tmp_path / "per_genre_f1.png").is_file()


# -- from probabilities to genres --------------------------------------------------------------------------

def test_to_labels_keeps_every_genre_at_or_above_the_threshold():
    probabilities = np.array([[0.7, 0.5, 0.49], [0.9, 0.8, 0.6]])
    assert to_labels(probabilities, 0.5).tolist() == [[1, 1, 0], [1, 1, 1]]
    assert to_labels(probabilities, 0.75).tolist() == [[1, 0, 0], [1, 1, 0]]  # the first: none, so its likeliest


def test_to_labels_gives_a_movie_below_the_threshold_its_likeliest_genre():
    probabilities = np.array([[0.1, 0.3, 0.2], [0.05, 0.01, 0.02]])
    labels = to_labels(probabilities, 0.5)
    assert labels.tolist() == [[0, 1, 0], [1, 0, 0]]
    assert (labels.sum(axis=1) >= 1).all()


def test_to_labels_of_no_movies_is_empty():
    assert to_labels(np.zeros((0, 3)), 0.5).shape == (0, 3)

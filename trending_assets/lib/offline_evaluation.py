"""The offline evaluation of one candidate: scored on each evaluation dataset beside its reference (the champion,
or the prevalence baseline while there is none) on the same rows, with paired bootstrap intervals for the
difference; a stateful candidate is also compared with its parent (when the parent is not the reference), which
on the static test set measures forgetting."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from trending_assets.lib import evaluation
from trending_assets.lib.evaluation import BASELINE, Comparison
from trending_assets.lib.features import label_matrix
from trending_assets.lib.genre_model import GenreModel, predict_labels

STATIC_TEST, BACKTEST = "static_test", "backtest"


@dataclass(frozen=True)
class Dataset:
    name: str  # static_test | backtest
    window_id: str  # content hash of the rows (ml.training_windows)
    frame: pl.DataFrame


@dataclass(frozen=True)
class Scored:
    """A model version (or the baseline) with its named 0/1 predictions per dataset."""

    version_id: str
    model: GenreModel | None  # None for the baseline
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateEvaluation:
    candidate: str
    reference: str
    rows: dict[str, pl.DataFrame]  # version -> long evaluation rows over every dataset
    comparisons: list[Comparison]
    headline: dict[str, float]  # e.g. static_test_macro_f1, backtest_micro_f1

    def per_genre_f1(self, version: str, dataset: str) -> dict[str, float]:
        return evaluation.per_genre_f1(self.rows[version], dataset) if version in self.rows else {}

    def support(self, dataset: str) -> dict[str, int]:
        return evaluation.per_genre_support(self.rows[self.candidate], dataset)

    def comparison(self, reference: str, dataset: str, metric: str = "macro_f1") -> Comparison | None:
        return next((c for c in self.comparisons
                     if c.reference == reference and c.dataset == dataset and c.metric == metric), None)


def evaluate_candidate(
    candidate_id: str,
    candidate: GenreModel,
    datasets: list[Dataset],
    reference_id: str | None,
    reference: GenreModel | None,
    training_labels: np.ndarray,
    parent: tuple[str, GenreModel] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> CandidateEvaluation:
    """Score the candidate, its reference and (if any) its parent on every dataset, and compare them.

    ``reference`` is the champion; with None, the reference is the prevalence baseline built from
    ``training_labels`` (the window's 0/1 genre matrix). Every model predicts with its own threshold.
    """
    genres = candidate.genres
    scored = [Scored(candidate_id, candidate)]
    scored.append(Scored(reference_id, reference) if reference is not None else Scored(BASELINE, None))
    if parent is not None and parent[0] != scored[1].version_id:
        scored.append(Scored(parent[0], parent[1]))
    rows: dict[str, list[pl.DataFrame]] = {s.version_id: [] for s in scored}
    comparisons: list[Comparison] = []
    headline: dict[str, float] = {}
    for data in datasets:
        if data.frame.is_empty():
            continue
        y_true = label_matrix(data.frame, genres)
        for s in scored:
            if s.model is None:
                s.predictions[data.name] = evaluation.baseline_predictions(training_labels, data.frame.height)
            else:
                if tuple(s.model.genres) != tuple(genres):
                    raise ValueError(f"{s.version_id} predicts genres {list(s.model.genres)}, the candidate "
                                     f"{list(genres)}; they cannot be compared on the same labels")
                s.predictions[data.name] = predict_labels(s.model, data.frame)[1]
            rows[s.version_id].append(
                evaluation.evaluate(s.version_id, data.name, data.frame, y_true, s.predictions[data.name], genres)
            )
        for other in scored[1:]:
            if other.version_id == BASELINE and data.name != STATIC_TEST:
                continue  # the baseline only has to be beaten where the gates look
            comparisons += evaluation.compare(candidate_id, other.version_id, data.name, data.window_id, y_true,
                                              other.predictions[data.name], scored[0].predictions[data.name],
                                              n_boot=n_boot, seed=seed)
        overall = rows[candidate_id][-1].filter(pl.col("slice") == "all")
        for metric, value in zip(overall["metric"], overall["value"]):
            headline[f"{data.name}_{metric}"] = round(float(value), 4)
    if parent is not None:
        kept = next((c for c in comparisons
                     if c.reference == parent[0] and c.dataset == STATIC_TEST and c.metric == "macro_f1"), None)
        if kept is not None:  # what the parent knew that the stateful child lost (negative: it improved)
            headline[f"{STATIC_TEST}_forgetting_macro_f1"] = round(-kept.diff, 4)
    return CandidateEvaluation(
        candidate=candidate_id, reference=scored[1].version_id,
        rows={v: pl.concat(r) for v, r in rows.items() if r}, comparisons=comparisons, headline=headline,
    )

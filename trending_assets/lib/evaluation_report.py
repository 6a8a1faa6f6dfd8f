"""The evaluation report a person reads in the Dagster UI: headline scores, the paired comparisons with their
intervals, per-genre and per-slice tables, and a per-genre F1 plot (candidate vs reference) written as PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trending_assets.lib import reports
from trending_assets.lib.offline_evaluation import STATIC_TEST, CandidateEvaluation

HEADLINE_METRICS = ("micro_f1", "macro_f1", "samples_f1")


@dataclass(frozen=True)
class Report:
    markdown: str
    plot_path: Path


def evaluation_report(result: CandidateEvaluation, folder: Path) -> Report:
    """Write ``report.md`` and ``per_genre_f1.png`` into ``folder`` and return the markdown (plot inlined)."""
    candidate, reference = result.candidate, result.reference
    png = reports.per_genre_f1_plot(
        result.per_genre_f1(candidate, STATIC_TEST) or result.per_genre_f1(candidate, "backtest"),
        result.per_genre_f1(reference, STATIC_TEST) or None, candidate, reference,
        f"Per-genre F1 on the static test set: {candidate} vs {reference}",
    )
    plot_path = reports.write_png(png, folder / "per_genre_f1.png")
    sections = [
        f"## {candidate} vs {reference}",
        reports.markdown_table(_headline(result)),
        "### Paired bootstrap: candidate minus reference (95% CI)",
        reports.markdown_table(_comparisons(result)),
        "### Per genre (static test set)",
        reports.markdown_table(_per_genre(result)),
        "### Slices (static test set, macro F1)",
        reports.markdown_table(_slices(result), max_rows=40),
    ]
    body = "\n\n".join(sections)
    (folder / "report.md").write_text(f"{body}\n\n![per-genre F1]({plot_path.name})\n")
    return Report(f"{body}\n\n{reports.markdown_image(png, f'per-genre F1 {candidate} vs {reference}')}", plot_path)


def _overall(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter((pl.col("slice") == "all") & pl.col("metric").is_in(HEADLINE_METRICS))


def _headline(result: CandidateEvaluation) -> pl.DataFrame:
    frames = [_overall(rows) for rows in result.rows.values()]
    if not frames:
        return pl.DataFrame({"model": []})
    return (
        pl.concat(frames)
        .pivot(on="metric", index=["dataset", "model_version", "n"], values="value")
        .rename({"model_version": "model", "n": "movies"})
        .sort("dataset", "model")
    )


def _comparisons(result: CandidateEvaluation) -> pl.DataFrame:
    return pl.DataFrame(
        [{"dataset": c.dataset, "reference": c.reference, "metric": c.metric, "diff": c.diff,
          "ci_low": c.low, "ci_high": c.high, "p_value": c.p_value, "movies": c.n} for c in result.comparisons],
        schema={"dataset": pl.String, "reference": pl.String, "metric": pl.String, "diff": pl.Float64,
                "ci_low": pl.Float64, "ci_high": pl.Float64, "p_value": pl.Float64, "movies": pl.Int64},
    )


def _per_genre(result: CandidateEvaluation) -> pl.DataFrame:
    rows = result.rows[result.candidate].filter((pl.col("dataset") == STATIC_TEST) & (pl.col("slice") == "genre"))
    table = rows.pivot(on="metric", index="slice_value", values="value").rename({"slice_value": "genre"})
    reference = result.per_genre_f1(result.reference, STATIC_TEST)
    if reference and not table.is_empty():
        table = table.with_columns(pl.col("genre").replace_strict(reference, default=None).alias("reference_f1"))
    return table.sort("support", descending=True) if "support" in table.columns else table


def _slices(result: CandidateEvaluation) -> pl.DataFrame:
    def macro(version: str, name: str) -> pl.DataFrame:
        rows = result.rows.get(version)
        if rows is None:
            return pl.DataFrame(schema={"slice": pl.String, "slice_value": pl.String, name: pl.Float64, "n": pl.Int64})
        return rows.filter((pl.col("dataset") == STATIC_TEST) & (pl.col("metric") == "macro_f1")
                           & ~pl.col("slice").is_in(["all", "genre"])).select(
            "slice", "slice_value", pl.col("value").alias(name), "n")

    table = macro(result.candidate, "candidate")
    if result.reference in result.rows:
        table = table.join(macro(result.reference, "reference").drop("n"), on=["slice", "slice_value"], how="left")
    return table.sort("slice", "slice_value")

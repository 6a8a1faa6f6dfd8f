"""What a person sees of an evaluation in the Dagster UI: markdown tables and small PNG plots.

Plots are drawn on a bare ``matplotlib.figure.Figure`` rather than through pyplot, so no global figure state or
GUI backend is involved and runs in parallel threads cannot draw on each other's figures. They are kept small
(6 inches wide at ``DPI``) because a markdown metadata value carries them inline as base64.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from trending_assets.lib import atomic_file

# 100 dpi at 6 inches wide keeps a plot's PNG in the tens of kilobytes, far below what a metadata value can hold.
DPI = 100
WIDTH_INCHES = 6.0
MISSING = "—"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FRESHNESS_COLUMNS: tuple[str, ...] = ("label", "age_days_mid", "micro_f1", "macro_f1")


def markdown_table(frame: pl.DataFrame, float_format: str = "{:.3f}", max_rows: int = 50) -> str:
    """``frame`` as a GitHub markdown table: floats through ``float_format``, null as "—", numbers right-aligned.

    Only the first ``max_rows`` rows are shown; a last line says how many more there were.
    """
    if max_rows < 0:
        raise ValueError(f"max_rows must be at least 0; got {max_rows!r}")
    if frame.width == 0:
        return "_(no columns)_"
    numeric = [frame.schema[c].is_numeric() for c in frame.columns]
    lines = [
        _row(_cell(c, float_format) for c in frame.columns),
        _row("---:" if right else "---" for right in numeric),
    ]
    lines += [_row(_cell(v, float_format) for v in row) for row in frame.head(max_rows).iter_rows()]
    if frame.is_empty():
        lines.append("\n_(no rows)_")
    elif frame.height > max_rows:
        lines.append(f"\n... {frame.height - max_rows} more rows")
    return "\n".join(lines)


def per_genre_f1_plot(
    candidate: dict[str, float],
    reference: dict[str, float] | None,
    candidate_name: str,
    reference_name: str | None,
    title: str,
) -> bytes:
    """PNG of per-genre F1 as horizontal bars, alphabetical from the top, the reference's beside the candidate's.

    A genre only one side scored gets only that side's bar. Without a reference (no champion yet), the candidate
    is drawn alone.
    """
    sides = [(candidate_name, candidate)]
    if reference is not None:
        sides.append((reference_name or "reference", reference))
    genres = sorted(set().union(*(scores for _, scores in sides)))
    # A quarter inch per genre keeps 18 genres legible while the figure stays small.
    figure = Figure(figsize=(WIDTH_INCHES, min(8.0, max(3.0, 1.0 + 0.25 * len(genres)))), layout="constrained")
    axes = figure.add_subplot()
    height = 0.8 / len(sides)
    for i, (name, scores) in enumerate(sides):
        positions = [g + (i - (len(sides) - 1) / 2) * height for g in range(len(genres))]
        axes.barh(positions, [scores.get(g, math.nan) for g in genres], height=height, label=name)
    axes.set_yticks(range(len(genres)), genres, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("F1")
    axes.set_title(title, fontsize=10)
    if genres:
        figure.legend(loc="outside upper center", ncols=len(sides), fontsize=8)
    else:
        axes.text(0.5, 0.5, "no genres scored", ha="center", va="center", transform=axes.transAxes)
    return _png(figure)


def freshness_plot(table: pl.DataFrame) -> bytes:
    """PNG of the value-of-freshness experiment: macro and micro F1 on the newest movies per training-data age.

    ``table`` is ``freshness.run_experiment``'s: one row per age bucket with ``label``, ``age_days_mid``,
    ``micro_f1`` and ``macro_f1``. Newest data is on the left; a bucket without scores (too few movies to
    train on) is marked "insufficient data".
    """
    missing = [c for c in FRESHNESS_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"freshness table lacks column(s) {', '.join(missing)}; pass freshness.run_experiment's table"
        )
    rows = table.sort("age_days_mid")
    figure = Figure(figsize=(WIDTH_INCHES, 4.0), layout="constrained")
    axes = figure.add_subplot()
    width = 0.38
    for offset, metric in ((-width / 2, "macro_f1"), (width / 2, "micro_f1")):
        values = [math.nan if v is None else v for v in rows[metric]]
        bars = axes.bar([x + offset for x in range(rows.height)], values, width=width, label=metric.replace("_", " "))
        axes.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.3f}" for v in values], fontsize=7, padding=2)
    for x, (micro, macro) in enumerate(zip(rows["micro_f1"], rows["macro_f1"])):
        if micro is None and macro is None:
            axes.text(x, 0.05, "insufficient\ndata", ha="center", fontsize=8, color="dimgray")
    axes.set_xticks(range(rows.height), rows["label"].to_list(), fontsize=8)
    # Fixed, because autoscaling ignores the empty bars of an insufficient bucket at either end.
    axes.set_xlim(-0.5, max(rows.height, 1) - 0.5)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("age of the training data")
    axes.set_ylabel("F1 on the newest movies")
    axes.set_title("Value of freshness: equal-sized models trained on older data", fontsize=10)
    if rows.is_empty():
        axes.text(0.5, 0.5, "no age buckets", ha="center", va="center", transform=axes.transAxes)
    else:
        figure.legend(loc="outside upper center", ncols=2, fontsize=8)
    return _png(figure)


def drift_plot(features: pl.DataFrame, title: str) -> bytes:
    """PNG of every feature's PSI as horizontal bars, red where the feature's own test said drift, grey where it
    had too little data. ``features`` is ``DriftReport.features()``: feature, signal, psi, drifted. Tests without
    a PSI (text, vocabulary, embeddings) get an empty bar and "(no PSI)" in their label, so their verdict still
    shows by colour. The usual PSI reading marks are drawn at 0.1 (moderate) and 0.25 (large)."""
    rows = features
    labels = [f"{signal}: {feature}" + (" (no PSI)" if psi is None else "")
              for signal, feature, psi in zip(rows["signal"], rows["feature"], rows["psi"])]
    figure = Figure(figsize=(WIDTH_INCHES, min(8.0, max(2.5, 1.0 + 0.28 * len(labels)))), layout="constrained")
    axes = figure.add_subplot()
    colors = ["lightgray" if d is None else "tab:red" if d else "tab:blue" for d in rows["drifted"]]
    values = [0.0 if v is None else v for v in rows["psi"]]
    axes.barh(range(len(labels)), values, color=colors)
    for y, (psi, drifted) in enumerate(zip(rows["psi"], rows["drifted"])):
        if psi is None and drifted is not None:  # a verdict without a PSI: a marker in the verdict's colour
            axes.plot([0], [y], marker="s", color="tab:red" if drifted else "tab:blue")
    for mark in (0.1, 0.25):
        axes.axvline(mark, color="dimgray", linestyle=":", linewidth=1)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("PSI (red: drifted by its test; grey: too little data)")
    axes.set_title(title, fontsize=10)
    if not labels:
        axes.text(0.5, 0.5, "no features judged", ha="center", va="center", transform=axes.transAxes)
    return _png(figure)


def performance_plot(rows: pl.DataFrame, metrics: tuple[str, ...], title: str) -> bytes:
    """PNG of each (model_version, metric) in ``metrics`` over days, from ``monitoring.model_performance`` rows
    (model_version, day, metric, value)."""
    figure = Figure(figsize=(WIDTH_INCHES, 3.5), layout="constrained")
    axes = figure.add_subplot()
    shown = rows.filter(pl.col("metric").is_in(list(metrics))).sort("day")
    for (version, metric), line in shown.group_by("model_version", "metric", maintain_order=True):
        axes.plot(line["day"].to_list(), line["value"].to_list(), marker="o", markersize=3,
                  label=f"{version} {metric.replace('_', ' ')}")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("value")
    axes.set_title(title, fontsize=10)
    axes.tick_params(axis="x", labelsize=7, labelrotation=30)
    if shown.is_empty():
        axes.text(0.5, 0.5, "no performance rows yet", ha="center", va="center", transform=axes.transAxes)
    else:
        axes.legend(fontsize=7, loc="lower left")
    return _png(figure)


def effect_plot(rows: pl.DataFrame, title: str) -> bytes:
    """PNG of an experiment metric's effect (treatment - control) over its analyses, with the fixed-horizon and
    the always-valid intervals, from ``experiments.results`` rows (analysed_at, percent, diff, ci_low, ci_high,
    sequential_ci_low, sequential_ci_high)."""
    figure = Figure(figsize=(WIDTH_INCHES, 3.2), layout="constrained")
    axes = figure.add_subplot()
    rows = rows.sort("analysed_at")
    x = list(range(1, rows.height + 1))
    if rows.height:
        diff = rows["diff"].fill_null(0.0).to_list()
        axes.fill_between(x, rows["sequential_ci_low"].fill_null(float("nan")).to_list(),
                          rows["sequential_ci_high"].fill_null(float("nan")).to_list(), alpha=0.15,
                          label="always-valid interval")
        axes.errorbar(x, diff, yerr=[[d - lo if lo is not None else 0 for d, lo in zip(diff, rows["ci_low"])],
                                     [hi - d if hi is not None else 0 for d, hi in zip(diff, rows["ci_high"])]],
                      fmt="o", markersize=3, capsize=2, label="effect, 95% CI (fixed horizon)")
        axes.set_xticks(x, [f"{p:g}%" for p in rows["percent"]], fontsize=7)
        axes.legend(fontsize=7, loc="best")
    else:
        axes.text(0.5, 0.5, "no analysis yet", ha="center", va="center", transform=axes.transAxes)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_xlabel("analysis (challenger share of users)", fontsize=8)
    axes.set_ylabel("treatment - control", fontsize=8)
    axes.set_title(title, fontsize=10)
    return _png(figure)


def write_png(png: bytes, path: Path) -> Path:
    """Write ``png`` to ``path``, creating its folders; atomically, so no reader sees half an image."""
    return atomic_file.write_bytes(path, png)


def markdown_image(png: bytes, alt: str) -> str:
    """``![alt](data:image/png;base64,...)``: the image inline, so a markdown metadata value shows it by itself."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("markdown_image takes PNG bytes (as the plot functions here return); these are not a PNG")
    escaped = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"![{escaped}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(value: object, float_format: str) -> str:
    """One value as table text; pipes are escaped and line breaks flattened, which would otherwise break the row."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        text = float_format.format(value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_cell(v, float_format) for v in value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")

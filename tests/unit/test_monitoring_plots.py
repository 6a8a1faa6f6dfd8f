"""The monitoring plots: drift PSI bars and performance over days, as small PNGs (also with nothing to draw)."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import polars as pl
from matplotlib import colors, image

from trending_assets.lib.drift_report import DriftReport
from trending_assets.lib.performance import PERFORMANCE_SCHEMA
from trending_assets.lib.reports import PNG_SIGNATURE, drift_plot, performance_plot

INLINE_BUDGET = 200_000
RED = np.array(colors.to_rgb("tab:red"))
BLUE = np.array(colors.to_rgb("tab:blue"))


def pixels(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < INLINE_BUDGET
    return image.imread(io.BytesIO(png), format="png")


def share_of(picture: np.ndarray, rgb: np.ndarray) -> float:
    return float((np.abs(picture[..., :3] - rgb).max(axis=-1) < 0.02).mean())


def features(*rows: tuple) -> pl.DataFrame:
    """``DriftReport.features()`` rows: (signal, feature, psi, drifted)."""
    empty = DriftReport(0, 0, None, None, {}).features()
    frame = pl.DataFrame(rows, schema={"signal": pl.String, "feature": pl.String, "psi": pl.Float64,
                                       "drifted": pl.Boolean}, orient="row")
    return pl.concat([empty, frame], how="diagonal_relaxed") if rows else empty


def perf(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA, orient="row")


def test_drift_plot_draws_drifted_features_red_and_the_rest_blue():
    calm = pixels(drift_plot(features(("data", "popularity", 0.05, False), ("data", "runtime", 0.02, False),
                                      ("label", "label genres", 0.04, False)), "Drift"))
    assert share_of(calm, BLUE) > 0 and share_of(calm, RED) == 0

    alarmed = pixels(drift_plot(features(("data", "popularity", 0.4, True), ("data", "runtime", 0.02, False),
                                         ("label", "label genres", None, None)), "Drift"))
    assert share_of(alarmed, RED) > 0 and share_of(alarmed, BLUE) > 0


def test_drift_plot_with_no_features_is_still_a_png():
    picture = pixels(drift_plot(features(), "Drift: nothing judged"))
    assert picture.shape[0] > 0 and share_of(picture, RED) == 0 == share_of(picture, BLUE)


def test_performance_plot_draws_only_the_chosen_metrics():
    rows = perf(("v1", date(2026, 1, 1), "online_micro_f1", 0.6, 10),
                ("v1", date(2026, 1, 2), "online_micro_f1", 0.7, 12),
                ("v1", date(2026, 1, 2), "thumbs_down_rate", 0.2, 30),
                ("v2", date(2026, 1, 2), "online_micro_f1", 0.8, 4))
    drawn = performance_plot(rows, ("online_micro_f1",), "Performance")
    picture = pixels(drawn)
    assert share_of(picture, BLUE) > 0  # the first line's colour
    # a metric no row has draws no line: the same picture as no rows at all
    nothing = performance_plot(rows, ("click_through",), "Performance")
    assert nothing == performance_plot(perf(), ("click_through",), "Performance")
    assert share_of(pixels(nothing), BLUE) == 0
    assert drawn != nothing


def test_performance_plot_of_no_rows_is_a_png():
    picture = pixels(performance_plot(perf(), ("online_micro_f1", "estimated_micro_f1"), "Performance"))
    assert picture.ndim == 3 and share_of(picture, BLUE) == 0

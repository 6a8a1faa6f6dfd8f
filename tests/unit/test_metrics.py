"""Multi-label metrics: per-genre scores, the zero-division convention, summaries, slices, the long table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.metrics import (
    EVALUATION_COLUMNS,
    f1_from_counts,
    genre_counts,
    genre_scores,
    macro_f1,
    micro_f1,
    slice_report,
    standard_slices,
    summary,
    to_long,
)

GENRES = ["drama", "comedy", "horror", "western"]
# drama: half recalled; comedy: perfect; horror: absent but predicted once; western: absent and never predicted.
Y_TRUE = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
Y_PRED = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_genre_scores_by_hand():
    scores = genre_scores(Y_TRUE, Y_PRED, GENRES)

    assert scores.columns == ["genre", "support", "precision", "recall", "f1"]
    assert scores["genre"].to_list() == GENRES
    assert scores["support"].to_list() == [2, 2, 0, 0]
    assert scores["precision"].to_list() == [1.0, 1.0, 0.0, 0.0]
    assert scores["recall"].to_list() == [0.5, 1.0, 0.0, 0.0]
    assert scores["f1"].to_list() == pytest.approx([2 / 3, 1.0, 0.0, 0.0])


def test_undefined_ratios_score_zero_like_sklearn_zero_division_0():
    never_predicted = genre_scores(np.array([[1], [0]]), np.array([[0], [0]]), ["drama"]).row(0, named=True)
    nothing_at_all = genre_scores(np.array([[0], [0]]), np.array([[0], [0]]), ["drama"]).row(0, named=True)

    assert (never_predicted["precision"], never_predicted["recall"], never_predicted["f1"]) == (0.0, 0.0, 0.0)
    assert (nothing_at_all["support"], nothing_at_all["f1"]) == (0, 0.0)


def test_summary_by_hand():
    assert summary(Y_TRUE, Y_PRED) == {
        "micro_f1": pytest.approx(6 / 8),  # TP 3, FP 1, FN 1
        "macro_f1": pytest.approx((2 / 3 + 1) / 2),  # drama and comedy only: the others have no support
        "samples_f1": pytest.approx((1 + 2 / 3 + 2 / 3 + 0) / 4),  # the empty last movie scores 0
        "exact_match": 0.5,
        "n": 4,
    }


def test_macro_f1_ignores_genres_without_support_even_when_predicted():
    without = summary(Y_TRUE[:, :2], Y_PRED[:, :2])

    assert summary(Y_TRUE, Y_PRED)["macro_f1"] == pytest.approx(without["macro_f1"])
    assert summary(Y_TRUE, Y_PRED)["micro_f1"] < without["micro_f1"]  # micro does count the false horror


def test_no_labels_and_no_rows_score_zero_instead_of_failing():
    empty = np.zeros((0, 3), dtype=int)

    assert summary(np.zeros((2, 3)), np.zeros((2, 3))) == {
        "micro_f1": 0.0, "macro_f1": 0.0, "samples_f1": 0.0, "exact_match": 1.0, "n": 2,
    }
    assert summary(empty, empty) == {"micro_f1": 0.0, "macro_f1": 0.0, "samples_f1": 0.0, "exact_match": 0.0, "n": 0}


def test_count_functions_score_many_count_sets_at_once():
    rng = np.random.default_rng(0)
    sets = [(rng.random((50, 5)) < 0.3, rng.random((50, 5)) < 0.3) for _ in range(4)]
    stacked = np.stack([np.stack(genre_counts(t, p)) for t, p in sets])  # (sets, 3, genres)
    tp, fp, fn = stacked[:, 0], stacked[:, 1], stacked[:, 2]

    assert micro_f1(tp, fp, fn) == pytest.approx([summary(t, p)["micro_f1"] for t, p in sets])
    assert macro_f1(tp, fp, fn) == pytest.approx([summary(t, p)["macro_f1"] for t, p in sets])
    assert f1_from_counts(tp, fp, fn).shape == (4, 5)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "genres", "message"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), ["drama", "comedy"], "same"),
        (np.zeros(3), np.zeros(3), ["drama"], "2-d"),
        (np.zeros((3, 2)), np.full((3, 2), 0.7), ["drama", "comedy"], "y_pred must hold only 0/1"),
        (np.zeros((3, 2)), np.zeros((3, 2)), ["drama"], "1 genre names for 2 label columns"),
    ],
)
def test_bad_labels_are_refused_with_the_reason(y_true, y_pred, genres, message):
    with pytest.raises(ValueError, match=message):
        genre_scores(y_true, y_pred, genres)


def movies() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "release_year": [1994, 1999, 2021, None],
            "source": ["tmdb", "tmdb", None, "imdb"],
            "overview": [None, " ".join(["word"] * 19), " ".join(["word"] * 20), " ".join(["word"] * 50)],
        },
        schema_overrides={"release_year": pl.Int32},
    )


def test_standard_slices_label_decade_source_and_overview_length():
    labels = movies().select(**standard_slices(movies()))

    assert labels.to_dict(as_series=False) == {
        "release_decade": ["1990s", "1990s", "2020s", "unknown"],
        "source": ["tmdb", "tmdb", "unknown", "imdb"],
        "overview_length": ["none", "<20", "20-49", "50+"],
    }


def test_overview_length_counts_words_not_characters():
    frame = pl.DataFrame({"release_year": [2000] * 3, "source": ["x"] * 3, "overview": ["", "   ", "  one   two  "]})

    assert frame.select(**standard_slices(frame))["overview_length"].to_list() == ["none", "none", "<20"]


def test_standard_slices_name_the_missing_columns():
    with pytest.raises(ValueError, match="lacks column\\(s\\) source, overview"):
        standard_slices(pl.DataFrame({"release_year": [2000]}))


def test_slice_report_is_summary_per_slice_value_in_long_form():
    report = slice_report(movies(), Y_TRUE, Y_PRED, GENRES, {**standard_slices(movies()), "by_source": "source"})

    assert report.schema == pl.Schema(
        {"slice": pl.String, "slice_value": pl.String, "metric": pl.String, "value": pl.Float64, "n": pl.Int64}
    )
    overall = report.filter(pl.col("slice") == "all")
    assert dict(overall.select("metric", "value").iter_rows()) == pytest.approx(
        {k: v for k, v in summary(Y_TRUE, Y_PRED).items() if k != "n"}
    )
    tmdb = report.filter(pl.col("slice") == "source", pl.col("slice_value") == "tmdb")
    assert dict(tmdb.select("metric", "value").iter_rows()) == pytest.approx(
        {k: v for k, v in summary(Y_TRUE[:2], Y_PRED[:2]).items() if k != "n"}
    )
    assert tmdb["n"].unique().to_list() == [2]
    per_slice_n = report.filter(pl.col("metric") == "micro_f1").group_by("slice").agg(pl.col("n").sum())
    assert dict(per_slice_n.iter_rows()) == {"all": 4, "release_decade": 4, "source": 4, "overview_length": 4,
                                             "by_source": 4}
    assert report.filter(pl.col("slice") == "by_source")["slice_value"].unique().sort().to_list() == [
        "imdb", "tmdb", "unknown",
    ]


def test_slice_report_needs_one_frame_row_per_movie():
    with pytest.raises(ValueError, match="frame has 3 rows but the labels have 4"):
        slice_report(movies().head(3), Y_TRUE, Y_PRED, GENRES, {"source": "source"})


def test_to_long_gives_one_evaluations_row_per_metric():
    rows = to_long("xgboost-v3", "static_test", "source", "tmdb", {"micro_f1": 0.5, "macro_f1": 0.25}, 120)

    assert [tuple(row) for row in rows] == [EVALUATION_COLUMNS] * 2
    assert rows[1] == {
        "model_version": "xgboost-v3", "dataset": "static_test", "slice": "source", "slice_value": "tmdb",
        "metric": "macro_f1", "value": 0.25, "n": 120,
    }

"""Evaluation reports: markdown tables, PNG plots small enough to inline, and how they are written and embedded."""

from __future__ import annotations

import base64
import io
import re
from datetime import date

import polars as pl
import pytest
from matplotlib import image

from trending_assets.lib.freshness import RESULT_SCHEMA
from trending_assets.lib.reports import (
    PNG_SIGNATURE,
    freshness_plot,
    markdown_image,
    markdown_table,
    per_genre_f1_plot,
    write_png,
)

CANDIDATE = {"action": 0.81, "comedy": 0.64, "horror": 0.72, "western": 0.1}
CHAMPION = {"action": 0.78, "comedy": 0.70, "drama": 0.55}
# Inline images live in one metadata value; this is the budget the plots must stay well below.
INLINE_BUDGET = 200_000


def pixels(png: bytes):
    assert png.startswith(PNG_SIGNATURE)
    return image.imread(io.BytesIO(png), format="png")


def freshness_table() -> pl.DataFrame:
    return pl.DataFrame(
        [
            ("0-30 days old", date(2024, 3, 2), date(2024, 3, 31), 15.0, 60, 100, 0.93, 0.91, "ok", 0.2),
            ("30-60 days old", date(2024, 2, 1), date(2024, 3, 1), 45.0, 60, 100, 0.71, 0.66, "ok", 0.2),
            ("60-90 days old", date(2024, 1, 2), date(2024, 1, 31), 75.0, 7, 100, None, None, "insufficient data", None),
        ],
        schema=RESULT_SCHEMA,
        orient="row",
    )


# -- markdown tables ---------------------------------------------------------------------------------------

def test_a_table_formats_floats_shows_nulls_and_escapes_pipes():
    frame = pl.DataFrame({"genre": ["action", "sci|fi"], "f1": [0.12345, None], "support": [3, 4]})
    assert markdown_table(frame) == "\n".join([
        "| genre | f1 | support |",
        "| --- | ---: | ---: |",
        "| action | 0.123 | 3 |",
        "| sci\\|fi | — | 4 |",
    ])


def test_the_float_format_is_the_callers():
    assert "| 12.3% |" in markdown_table(pl.DataFrame({"share": [0.1234]}), float_format="{:.1%}")


def test_a_long_table_is_cut_and_says_how_many_rows_are_left_out():
    lines = markdown_table(pl.DataFrame({"i": range(53)}), max_rows=50).splitlines()
    assert lines[-1] == "... 3 more rows"
    assert [line for line in lines if line.startswith("| ") and line[2].isdigit()][-1] == "| 49 |"
    assert "more rows" not in markdown_table(pl.DataFrame({"i": range(50)}), max_rows=50)


def test_an_empty_table_keeps_its_header_and_says_it_is_empty():
    text = markdown_table(pl.DataFrame(schema={"genre": pl.String, "f1": pl.Float64}))
    assert text.startswith("| genre | f1 |") and text.endswith("_(no rows)_")


# -- plots -------------------------------------------------------------------------------------------------

def test_per_genre_plot_is_a_small_png_of_the_candidate_against_the_champion():
    png = per_genre_f1_plot(CANDIDATE, CHAMPION, "candidate v7", "champion v6", "F1 per genre, static test")
    height, width, _ = pixels(png).shape
    assert width == 600 and height > 0
    assert len(base64.b64encode(png)) < INLINE_BUDGET / 2


def test_per_genre_plot_without_a_champion_draws_the_candidate_alone():
    alone = per_genre_f1_plot(CANDIDATE, None, "candidate v1", None, "F1 per genre")
    assert pixels(alone).shape[1] == 600
    assert alone != per_genre_f1_plot(CANDIDATE, CHAMPION, "candidate v1", None, "F1 per genre")


def test_freshness_plot_is_a_small_png_even_with_an_insufficient_bucket():
    png = freshness_plot(freshness_table())
    assert pixels(png).shape[:2] == (400, 600)
    assert len(base64.b64encode(png)) < INLINE_BUDGET / 2
    assert pixels(freshness_plot(freshness_table().clear())).shape[:2] == (400, 600)


def test_freshness_plot_refuses_a_table_that_is_not_the_experiments():
    with pytest.raises(ValueError, match="macro_f1"):
        freshness_plot(pl.DataFrame({"label": ["0-30 days old"], "age_days_mid": [15.0], "micro_f1": [0.9]}))


# -- writing and embedding ---------------------------------------------------------------------------------

def test_write_png_creates_folders_replaces_the_file_and_leaves_no_temporary_files(tmp_path):
    first, second = freshness_plot(freshness_table()), per_genre_f1_plot(CANDIDATE, None, "c", None, "t")
    path = tmp_path / "reports" / "v7" / "freshness.png"
    assert write_png(first, path) == path and path.read_bytes() == first
    write_png(second, path)
    assert path.read_bytes() == second
    assert [p.name for p in path.parent.iterdir()] == ["freshness.png"]


def test_markdown_image_carries_the_png_inline():
    png = per_genre_f1_plot(CANDIDATE, CHAMPION, "candidate", "champion", "F1")
    text = markdown_image(png, "F1 per genre [static test]")
    match = re.fullmatch(r"!\[(.*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match is not None
    assert match.group(1) == "F1 per genre \\[static test\\]"
    assert base64.b64decode(match.group(2)) == png


def test_markdown_image_refuses_bytes_that_are_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        markdown_image(b"GIF89a", "plot")

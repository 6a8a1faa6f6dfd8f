"""Training windows: date bounds per strategy, the static test hold-out, sampling, content hashing, writing."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from trending_assets.lib.sampling import UNCERTAINTY_FALLBACK_NOTE, stratum_quotas
from trending_assets.lib.windows import (
    WindowSpec,
    backtest_slice,
    build_window,
    split_static_test,
    static_test_ids,
    window_hash,
    write_window,
)

END = date(2024, 3, 31)
FIRST_DAY = date(2024, 1, 1)
COMMON = ["drama", "comedy", "action", "thriller"]


def movies(n: int = 600, prefix: str = "m") -> pl.DataFrame:
    """n movies over 91 days; every 10th unlabeled, every 40th a western (the rare genre)."""
    genres = []
    for i in range(n):
        if i % 10 == 0:
            genres.append([])
        elif i % 40 == 1:
            genres.append(["western", "drama"])
        else:
            genres.append([COMMON[i % 4], COMMON[(i + 1) % 4]])
    return pl.DataFrame(
        {
            "movie_id": [f"{prefix}{i:05d}" for i in range(n)],
            "title": [f"Movie {i}" for i in range(n)],
            "overview": [None if i % 7 == 0 else f"About {i}" for i in range(n)],
            "genres": genres,
            "first_seen_date": [FIRST_DAY + timedelta(days=i % 91) for i in range(n)],
            "scraped_at": [datetime(2024, 4, 1, 12, i % 60) for i in range(n)],
            "popularity": [float(i) / 3 for i in range(n)],
        },
        schema_overrides={"genres": pl.List(pl.String)},
    )


def labeled_outside_test(frame: pl.DataFrame) -> pl.DataFrame:
    _, rest = split_static_test(frame)
    return rest.filter(pl.col("genres").list.len() > 0)


def ids(frame: pl.DataFrame) -> set[str]:
    return set(frame["movie_id"].to_list())


# -- strategies and their date bounds ----------------------------------------------------------------------


def test_sliding_window_takes_exactly_the_last_days_up_to_end():
    frame = movies()
    result = build_window(frame, WindowSpec("sliding", days=7), END)

    assert result.start == date(2024, 3, 25) and result.end == END
    expected = labeled_outside_test(frame).filter(pl.col("first_seen_date").is_between(result.start, END))
    assert ids(result.rows) == ids(expected) and result.rows.height > 0
    assert result.rows["movie_id"].to_list() == sorted(result.rows["movie_id"].to_list())
    assert result.rows.columns == frame.columns
    assert result.sampling_used == "none" and result.notes == []


def test_all_history_takes_everything_up_to_end_and_has_no_start():
    frame = movies()
    end = date(2024, 2, 15)
    result = build_window(frame, WindowSpec("all_history"), end)

    assert result.start is None
    assert ids(result.rows) == ids(labeled_outside_test(frame).filter(pl.col("first_seen_date") <= end))
    assert result.rows["first_seen_date"].max() == end


def test_recent_plus_sample_adds_the_older_fraction_to_the_recent_days():
    frame = movies()
    result = build_window(frame, WindowSpec("recent_plus_sample", days=10, older_fraction=0.25), END)

    pool = labeled_outside_test(frame)
    recent = pool.filter(pl.col("first_seen_date") >= date(2024, 3, 22))
    older = pool.filter(pl.col("first_seen_date") < date(2024, 3, 22))
    picked_older = ids(result.rows) - ids(recent)
    assert ids(recent) <= ids(result.rows)
    assert picked_older <= ids(older)
    assert len(picked_older) == round(0.25 * older.height)
    assert result.sampling_used == "random"


def test_unlabeled_movies_never_enter_a_window():
    result = build_window(movies(), WindowSpec("all_history"), END)
    assert result.rows["genres"].list.len().min() > 0


def test_rows_per_genre_counts_every_canonical_genre():
    result = build_window(movies(), WindowSpec("sliding", days=30), END)
    assert result.rows_per_genre["horror"] == 0
    assert result.rows_per_genre["drama"] == result.rows.filter(pl.col("genres").list.contains("drama")).height


# -- the static test set -----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["sliding", "all_history", "recent_plus_sample"])
@pytest.mark.parametrize("sampling", ["random", "stratified", "uncertainty"])
def test_static_test_set_never_overlaps_a_window(strategy, sampling):
    frame = movies()
    test, _ = split_static_test(frame)
    spec = WindowSpec(strategy, days=14, older_fraction=0.5, sampling=sampling, max_rows=100)
    result = build_window(frame, spec, END)

    assert test.height > 0
    assert not ids(test) & ids(result.rows)
    assert not ids(test) & ids(backtest_slice(frame, END, days=30))


def test_static_test_set_is_stable_as_new_movies_arrive():
    old_ids = [f"m{i:05d}" for i in range(5000)]
    new_ids = [f"n{i:05d}" for i in range(5000)]

    before = static_test_ids(old_ids)
    after = static_test_ids(old_ids + new_ids)

    assert after & set(old_ids) == before
    assert 0.13 < len(before) / len(old_ids) < 0.17


def test_static_test_membership_depends_on_the_salt():
    movie_ids = [f"m{i:05d}" for i in range(1000)]
    assert static_test_ids(movie_ids, salt="static-test-v2") != static_test_ids(movie_ids)


# -- backtest slices ---------------------------------------------------------------------------------------


def test_backtest_slice_covers_the_days_ending_on_end_inclusive():
    frame = movies()
    sliced = backtest_slice(frame, END, days=3)

    assert set(sliced["first_seen_date"].to_list()) == {date(2024, 3, 29), date(2024, 3, 30), END}
    _, rest = split_static_test(frame)
    assert ids(sliced) == ids(rest.filter(pl.col("first_seen_date") >= date(2024, 3, 29)))


# -- sampling ----------------------------------------------------------------------------------------------


def test_random_sampling_is_deterministic_for_a_seed_and_blind_to_input_order():
    frame = movies()
    spec = WindowSpec("all_history", max_rows=50, seed=7)

    first = build_window(frame, spec, END)
    again = build_window(frame.reverse(), spec, END)
    other_seed = build_window(frame, WindowSpec("all_history", max_rows=50, seed=8), END)

    assert first.rows.height == 50
    assert first.rows.equals(again.rows) and first.window_hash == again.window_hash
    assert ids(first.rows) != ids(other_seed.rows)
    assert "capped" in first.notes[0]


def test_stratified_sampling_keeps_every_genre_even_the_rare_one():
    frame = movies()
    pool = labeled_outside_test(frame)
    result = build_window(frame, WindowSpec("all_history", sampling="stratified", max_rows=30), END)

    present = {g for gs in pool["genres"].to_list() for g in gs}
    assert "western" in present
    assert {g for g, n in result.rows_per_genre.items() if n} == present
    assert result.rows.height == 30 and result.sampling_used == "stratified"


def test_stratified_sampling_is_deterministic_for_a_seed():
    spec = WindowSpec("recent_plus_sample", days=7, older_fraction=0.1, sampling="stratified", seed=3)
    assert build_window(movies(), spec, END).window_hash == build_window(movies().reverse(), spec, END).window_hash


def test_stratum_quotas_are_proportional_with_one_from_each_stratum():
    quotas = stratum_quotas({"drama": 500, "comedy": 300, "western": 2}, 40)
    assert sum(quotas.values()) == 40
    assert quotas["western"] >= 1 and quotas["drama"] > quotas["comedy"]
    assert stratum_quotas({"drama": 5, "western": 1, "war": 2}, 2) == {"western": 1, "war": 1, "drama": 0}


def test_uncertainty_sampling_picks_the_lowest_margins():
    frame = movies()
    pool = labeled_outside_test(frame)
    # Distinct margins in scrambled order, so "lowest" has one answer.
    margins = pool.select("movie_id", margin=(pl.int_range(pl.len()) * 7919 % 10007) / 10007)
    spec = WindowSpec("all_history", sampling="uncertainty", max_rows=25)

    result = build_window(frame, spec, END, uncertainty=margins)

    assert ids(result.rows) == ids(margins.sort("margin", "movie_id").head(25))
    assert result.sampling_used == "uncertainty"
    assert UNCERTAINTY_FALLBACK_NOTE not in result.notes


def test_uncertainty_sampling_ranks_unscored_movies_last():
    frame = movies()
    scored = labeled_outside_test(frame).head(10).select("movie_id", margin=pl.lit(0.9))
    result = build_window(frame, WindowSpec("all_history", sampling="uncertainty", max_rows=12), END, scored)

    assert ids(scored) <= ids(result.rows)
    assert any("no champion margin" in note for note in result.notes)


def test_uncertainty_without_a_champion_falls_back_to_stratified_and_says_so():
    spec = WindowSpec("recent_plus_sample", days=7, sampling="uncertainty", max_rows=40)
    result = build_window(movies(), spec, END)

    assert result.sampling_used == "stratified"
    assert result.notes.count(UNCERTAINTY_FALLBACK_NOTE) == 1


# -- content hash ------------------------------------------------------------------------------------------


def test_window_hash_ignores_row_and_column_order():
    frame = movies(50)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1).select(list(reversed(frame.columns)))
    assert window_hash(frame) == window_hash(shuffled)
    assert len(window_hash(frame)) == 20


@pytest.mark.parametrize(
    "change",
    [
        pl.col("title").str.replace("Movie 3$", "Movie three"),
        pl.col("popularity") + pl.when(pl.col("movie_id") == "m00003").then(0.001).otherwise(0.0),
        pl.when(pl.col("movie_id") == "m00003").then(pl.lit(None)).otherwise(pl.col("overview")).alias("overview"),
        pl.col("genres").list.reverse(),
        pl.col("first_seen_date") + pl.duration(days=(pl.col("movie_id") == "m00003").cast(pl.Int64)),
    ],
)
def test_window_hash_changes_when_one_value_changes(change):
    frame = movies(50)
    assert window_hash(frame) != window_hash(frame.with_columns(change))


def test_window_hash_tells_null_from_empty_text():
    a = pl.DataFrame({"movie_id": ["a"], "overview": [""]})
    b = pl.DataFrame({"movie_id": ["a"], "overview": [None]}, schema=a.schema)
    assert window_hash(a) != window_hash(b)


# -- writing -----------------------------------------------------------------------------------------------


def test_write_window_writes_once_and_round_trips(tmp_path):
    result = build_window(movies(), WindowSpec("sliding", days=14), END)

    path = write_window(result.rows, result.window_hash, tmp_path / "windows")
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime - 10**9, mtime - 10**9))
    again = write_window(result.rows, result.window_hash, tmp_path / "windows")

    assert again == path and path.name == f"{result.window_hash}.parquet"
    assert path.stat().st_mtime_ns == mtime - 10**9
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    read = pl.read_parquet(path)
    assert read.equals(result.rows) and window_hash(read) == result.window_hash


# -- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"strategy": "slidin"}, "'slidin'"),
        ({"strategy": "sliding", "sampling": "stratifed"}, "'stratifed'"),
        ({"strategy": "sliding", "days": 0}, "days .* got 0"),
        ({"strategy": "sliding", "older_fraction": 1.5}, "older_fraction .* got 1.5"),
        ({"strategy": "sliding", "max_rows": 0}, "max_rows .* got 0"),
    ],
)
def test_invalid_specs_name_the_bad_value(kwargs, named):
    with pytest.raises(ValueError, match=named):
        WindowSpec(**kwargs)


def test_invalid_strategy_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="not one of: sliding, all_history, recent_plus_sample"):
        WindowSpec("slidin")


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="first_seen_date"):
        build_window(movies().drop("first_seen_date"), WindowSpec("sliding"), END)


def test_empty_input_gives_an_empty_window_with_a_stable_hash():
    empty = movies().head(0)
    spec = WindowSpec("recent_plus_sample", sampling="uncertainty", max_rows=10)

    first = build_window(empty, spec, END)
    second = build_window(empty, spec, END)

    assert first.rows.is_empty() and first.rows.schema == empty.schema
    assert first.window_hash == second.window_hash == window_hash(empty)
    assert first.sampling_used == "none" and "no labeled movies" in first.notes[0]
    assert backtest_slice(empty, END).is_empty()

"""The dbt project on a hand-written raw schema: latest versions, de-duplicated feedback, and incremental marts that
follow partition re-loads exactly (stale rows gone, repeated events counted once, same result as a full rebuild).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from trending_assets.lib.raw_schema import ddl

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
FIRST_LOAD = datetime(2024, 5, 4, 6, 0)
RELOAD = datetime(2024, 5, 5, 6, 0)


def dbt(warehouse: Path, work: Path, *args: str) -> None:
    """Run dbt on `warehouse`, with target and logs under `work` so parallel runs do not collide."""
    executable = Path(sys.executable).with_name("dbt")
    command = [
        str(executable if executable.exists() else shutil.which("dbt")),
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
    ]
    env = {**os.environ, "TRENDING_WAREHOUSE": str(warehouse), "DO_NOT_TRACK": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows into raw.<table>, numbering lines in order within each source file."""
    lines: dict[str, int] = {}
    for row in rows:
        source_file = row.setdefault("source_file", f"{table}/{row['partition_date']}.jsonl")
        lines[source_file] = lines.get(source_file, 0) + 1
        row.setdefault("line_number", lines[source_file])
        columns = ", ".join(row)
        con.execute(f"insert into raw.{table} ({columns}) values ({', '.join('?' * len(row))})", list(row.values()))


def movie(movie_id: str, scraped_at: datetime, loaded_at: datetime = FIRST_LOAD, **fields: Any) -> dict[str, Any]:
    return {"movie_id": movie_id, "title": movie_id.upper(), "scraped_at": scraped_at,
            "partition_date": scraped_at.date(), "loaded_at": loaded_at, **fields}


def review(review_id: str, movie_id: str, scraped_at: datetime, rating: float,
           loaded_at: datetime = FIRST_LOAD) -> dict[str, Any]:
    return {"review_id": review_id, "movie_id": movie_id, "rating": rating, "scraped_at": scraped_at,
            "partition_date": scraped_at.date(), "loaded_at": loaded_at}


def event(event_id: str, event_type: str, occurred_at: datetime, movie_id: str | None = "m1", user_id: str = "u1",
          loaded_at: datetime = FIRST_LOAD, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_id_derived": False, "user_id": user_id, "movie_id": movie_id,
            "event_type": event_type, "occurred_at": occurred_at, "partition_date": occurred_at.date(),
            "loaded_at": loaded_at, "model_version": "v1", **fields}


CORRECTION = '{"genres": ["Romance", "drama", "drama", "Sci-Fi", "cyberpunk"]}'


def first_load(con: duckdb.DuckDBPyConnection) -> None:
    insert(con, "movies", [
        movie("m1", datetime(2024, 5, 1, 10), genres=["drama", "comedy", "drama"], popularity=1.0),
        movie("m2", datetime(2024, 5, 1, 11)),  # unlabeled: genres NULL
        movie("m3", datetime(2024, 5, 1, 12), genres=[], genres_unknown=["mumblecore"]),
        movie("m1", datetime(2024, 5, 2, 9), genres=["romance", "drama"], popularity=2.0, title="M1 (re-scraped)"),
    ])
    insert(con, "reviews", [
        review("r1", "m1", datetime(2024, 5, 1, 10), 3.0),
        review("r2", "m1", datetime(2024, 5, 1, 10), 2.0),
        review("r1", "m1", datetime(2024, 5, 2, 9), 4.0),  # r1 re-scraped
        review("r3", "m2", datetime(2024, 5, 2, 9), 5.0),
        review("r4", "m9", datetime(2024, 5, 1, 10), 1.0),  # a movie never scraped
    ])
    insert(con, "feedback_events", [
        event("e1", "click", datetime(2024, 5, 1, 10)),
        event("e1", "click", datetime(2024, 5, 1, 10)),  # delivered twice in the same file
        event("e2", "rating", datetime(2024, 5, 1, 23, 59), user_id="u2", value=4.0),
        event("e7", "alert", datetime(2024, 5, 1, 12), movie_id=None, user_id="system"),
        event("e2", "rating", datetime(2024, 5, 2, 0, 1), user_id="u2", value=4.0),  # retried the next day
        event("e4", "thumbs_up", datetime(2024, 5, 2, 8)),
        event("e5", "impression", datetime(2024, 5, 2, 8), user_id="u2"),
        event("e3", "genre_correction", datetime(2024, 5, 3, 9), movie_id="m2", user_id="u3", payload=CORRECTION),
        event("e6", "impression", datetime(2024, 5, 3, 9), movie_id="m2"),
        event("e8", "impression", datetime(2024, 5, 3, 10), movie_id="m2"),
    ])


def reload(con: duckdb.DuckDBPyConnection) -> None:
    """Re-load partitions as ingestion does, each replaced whole with a new loaded_at and fewer rows.

    feedback D1 loses e2's first delivery, so e2 is now kept from D2 (a partition not re-loaded); feedback D3
    loses the genre correction e3 and e6; reviews D2 loses r1's re-scrape and r3.
    """
    con.execute("delete from raw.feedback_events where partition_date in (?, ?)", [D1, D3])
    con.execute("delete from raw.reviews where partition_date = ?", [D2])
    insert(con, "feedback_events", [
        event("e1", "click", datetime(2024, 5, 1, 10), loaded_at=RELOAD),
        event("e7", "alert", datetime(2024, 5, 1, 12), movie_id=None, user_id="system", loaded_at=RELOAD),
        event("e8", "impression", datetime(2024, 5, 3, 10), movie_id="m2", loaded_at=RELOAD),
    ])


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def marts(warehouse: Path) -> dict[str, list[tuple]]:
    """Every mart's rows, sorted, without `_built_at` (the start of the dbt run that wrote them)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            name: sorted(con.execute(f"select * {exclude} from marts.{name}").fetchall(), key=repr)
            for name, exclude in [
                ("dim_movies", ""),
                ("fct_reviews", ""),
                ("fct_feedback_events", "exclude (_built_at)"),
                ("agg_feedback_daily", "exclude (_built_at)"),
                ("fct_genre_corrections", "exclude (_built_at)"),
            ]
        }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse after the first load and a first `dbt build`."""
    work = tmp_path_factory.mktemp("dbt_first")
    warehouse = work / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for statement in ddl():
            con.execute(statement)
        first_load(con)
    dbt(warehouse, work, "build")
    return warehouse


@pytest.fixture(scope="module")
def rebuilt(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `built` after partition re-loads and an incremental `dbt build`."""
    work = tmp_path_factory.mktemp("dbt_reload")
    warehouse = work / "warehouse.duckdb"
    shutil.copy(built, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        reload(con)
    dbt(warehouse, work, "build")
    return warehouse


def test_schemas_are_used_verbatim(built: Path) -> None:
    tables = query(built, "select table_schema, table_name from information_schema.tables "
                          "where table_schema in ('staging', 'marts') order by all")
    assert tables == [
        ("marts", "agg_feedback_daily"), ("marts", "dim_movies"), ("marts", "fct_feedback_events"),
        ("marts", "fct_genre_corrections"), ("marts", "fct_reviews"),
        ("staging", "genre_taxonomy"), ("staging", "stg_feedback_events"), ("staging", "stg_movies"),
        ("staging", "stg_reviews"),
    ]


def test_dim_movies_keeps_the_latest_version_and_first_seen(built: Path) -> None:
    rows = query(built, "select movie_id, title, genres, is_labeled, genres_unknown, popularity, first_seen_date, "
                        "last_scraped_at, n_versions, n_reviews, avg_review_rating from marts.dim_movies order by 1")
    assert rows == [
        ("m1", "M1 (re-scraped)", ["drama", "romance"], True, None, 2.0, D1, datetime(2024, 5, 2, 9), 2, 2, 3.0),
        ("m2", "M2", None, False, None, None, D1, datetime(2024, 5, 1, 11), 1, 1, 5.0),
        ("m3", "M3", [], False, ["mumblecore"], None, D1, datetime(2024, 5, 1, 12), 1, 0, None),
    ]


def test_fct_reviews_keeps_the_latest_version(built: Path) -> None:
    rows = query(built, "select review_id, rating, n_versions, partition_date from marts.fct_reviews order by 1")
    assert rows == [("r1", 4.0, 2, D2), ("r2", 2.0, 1, D1), ("r3", 5.0, 1, D2), ("r4", 1.0, 1, D1)]


def test_feedback_events_count_once(built: Path) -> None:
    rows = query(built, "select event_id, event_date, n_occurrences from marts.fct_feedback_events order by 1")
    assert rows == [("e1", D1, 2), ("e2", D1, 2), ("e3", D3, 1), ("e4", D2, 1), ("e5", D2, 1), ("e6", D3, 1),
                    ("e7", D1, 1), ("e8", D3, 1)]
    daily = query(built, "select movie_id, event_date, event_type, n_events, n_users, sum_value, avg_value "
                         "from marts.agg_feedback_daily order by all")
    assert daily == [
        ("m1", D1, "click", 1, 1, None, None),
        ("m1", D1, "rating", 1, 1, 4.0, 4.0),
        ("m1", D2, "impression", 1, 1, None, None),
        ("m1", D2, "thumbs_up", 1, 1, None, None),
        ("m2", D3, "genre_correction", 1, 1, None, None),
        ("m2", D3, "impression", 2, 1, None, None),
        (None, D1, "alert", 1, 1, None, None),
    ]


def test_genre_corrections_sit_beside_the_scraped_genres(built: Path) -> None:
    rows = query(built, "select event_id, user_id, movie_id, corrected_genres, scraped_genres, genres_added, "
                        "genres_removed, model_version, event_date from marts.fct_genre_corrections")
    assert rows == [("e3", "u3", "m2", ["drama", "romance", "science_fiction"], None,
                     ["drama", "romance", "science_fiction"], [], "v1", D3)]
    # aliases resolve through the taxonomy seed; names it does not know are kept, not dropped
    assert query(built, "select corrected_genres_unknown from staging.stg_feedback_events where event_id = 'e3'") == [
        (["cyberpunk"],)]


def test_reload_removes_stale_rows_and_keeps_events_once(rebuilt: Path) -> None:
    events = query(rebuilt, "select event_id, event_date, n_occurrences from marts.fct_feedback_events order by 1")
    # e2 lost its D1 delivery, so its D2 retry is now the one kept; e3 and e6 are gone with D3's old rows.
    assert events == [("e1", D1, 1), ("e2", D2, 1), ("e4", D2, 1), ("e5", D2, 1), ("e7", D1, 1), ("e8", D3, 1)]
    daily = query(rebuilt, "select movie_id, event_date, event_type, n_events from marts.agg_feedback_daily "
                           "order by all")
    assert daily == [
        ("m1", D1, "click", 1),
        ("m1", D2, "impression", 1),
        ("m1", D2, "rating", 1),
        ("m1", D2, "thumbs_up", 1),
        ("m2", D3, "impression", 1),
        (None, D1, "alert", 1),
    ]
    assert query(rebuilt, "select count(*) from marts.fct_genre_corrections") == [(0,)]
    reviews = query(rebuilt, "select review_id, rating, partition_date from marts.fct_reviews order by 1")
    assert reviews == [("r1", 3.0, D1), ("r2", 2.0, D1), ("r4", 1.0, D1)]


def test_incremental_build_equals_a_full_rebuild(rebuilt: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(rebuilt, warehouse)
    incremental = marts(warehouse)
    dbt(warehouse, tmp_path, "run", "--full-refresh", "--select", "marts")
    assert marts(warehouse) == incremental


def test_every_model_and_column_is_described(built: Path) -> None:
    """Descriptions are what the Dagster UI shows; the documented columns are exactly the built ones."""
    manifest = json.loads((built.parent / "target" / "manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    for node in models:
        built_columns = [name for (name,) in query(
            built, f"select column_name from information_schema.columns "
                   f"where table_schema = '{node['schema']}' and table_name = '{node['name']}' order by ordinal_position"
        )]
        assert node["description"], node["name"]
        assert list(node["columns"]) == built_columns, node["name"]
        assert all(column["description"] for column in node["columns"].values()), node["name"]
    sources = {node["name"]: node for node in manifest["sources"].values()}
    assert {name: node["config"]["meta"]["dagster"]["asset_key"] for name, node in sources.items()} == {
        "movies": ["raw", "movies"], "reviews": ["raw", "reviews"], "feedback_events": ["raw", "feedback_events"],
    }


def test_lineage_includes_what_incremental_runs_read(built: Path) -> None:
    """Raw sources read only under is_incremental() are declared, so Dagster orders the marts after ingestion."""
    manifest = json.loads((built.parent / "target" / "manifest.json").read_text())
    depends_on = {node["name"]: set(node["depends_on"]["nodes"]) for node in manifest["nodes"].values()
                  if node["resource_type"] == "model"}
    assert "source.trending.raw.reviews" in depends_on["fct_reviews"]
    assert "source.trending.raw.feedback_events" in depends_on["fct_feedback_events"]
    assert "model.trending.fct_feedback_events" in depends_on["agg_feedback_daily"]
    assert "model.trending.fct_feedback_events" in depends_on["fct_genre_corrections"]


def test_parse_needs_no_warehouse(tmp_path: Path) -> None:
    """dagster-dbt loads the manifest from `dbt parse`, which must not open (or create) the warehouse."""
    warehouse = tmp_path / "absent" / "warehouse.duckdb"
    dbt(warehouse, tmp_path, "parse")
    assert (tmp_path / "target" / "manifest.json").exists()
    assert not warehouse.parent.exists()

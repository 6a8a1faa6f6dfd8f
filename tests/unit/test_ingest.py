"""Landing files -> raw partitions: every bad-input kind is quarantined with a reason, nothing is lost."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from trending_assets.lib.ingest import load_partition

DAY = date(2026, 1, 5)
NOW = datetime(2026, 1, 10, 12, 0, 0)


def movie(movie_id: str = "m1", **fields) -> dict:
    row = {"movie_id": movie_id, "title": f"Title {movie_id}", "overview": "a ghost in the house",
           "genres": ["horror"], "release_date": "2020-05-01", "scraped_at": "2026-01-05T10:00:00Z",
           "source": "tmdb", "popularity": 1.5}
    row.update(fields)
    return {k: v for k, v in row.items() if v is not ...}


def write_lines(path: Path, lines: list, end: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = b"\n".join(line if isinstance(line, bytes) else json.dumps(line).encode() for line in lines)
    path.write_bytes(blob + (end if lines else b""))
    return path


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture()
def con(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        yield connection


def load(con, landing: Path, entity: str = "movies", day: date = DAY):
    return load_partition(con, landing, entity, day, now=NOW)


def rejects(con, table: str = "movies") -> list[tuple]:
    return con.execute(f"SELECT line_number, reason FROM raw.{table}_rejects ORDER BY source_file, line_number").fetchall()


def test_good_lines_are_typed_with_lineage_and_canonical_genres(con, landing):
    write_lines(landing / "movies" / "a.jsonl", [
        movie("m1", genres=["Drama", "Sci-Fi"], popularity=2),
        movie("m2", genres="horror|comedy", release_date="1999", scraped_at="2026-01-05T23:30:00-00:00"),
        movie("m3", genres=...),
    ])
    report = load(con, landing)
    assert (report.accepted, report.rejected) == (3, 0)
    rows = con.execute(
        "SELECT movie_id, genres, release_date, release_year, scraped_at, source_file, line_number "
        "FROM raw.movies ORDER BY movie_id").fetchall()
    assert rows[0][1] == ["drama", "science_fiction"]
    assert rows[1][1:4] == (["comedy", "horror"], None, 1999)
    assert rows[2][1] is None  # missing genres = unlabeled, not an empty list
    assert rows[0][5:] == ("movies/a.jsonl", 1)


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"movie_id": "m9", "title": ', "malformed JSON"),
    (json.dumps(movie(title=...)).encode(), "missing required field title"),
    (json.dumps(movie(scraped_at=...)).encode(), "missing required field scraped_at"),
    (json.dumps(movie(popularity="very")).encode(), 'popularity: expected a number, got "very"'),
    (json.dumps(movie(vote_average=11)).encode(), "vote_average: 11.0 is outside 0..10"),
    (json.dumps(movie(title={"en": "x"})).encode(), "title: expected text"),
    (json.dumps(movie(genres=42)).encode(), "genres: expected a list of genres"),
    (json.dumps(movie(scraped_at="yesterday")).encode(), "scraped_at: expected an ISO timestamp"),
    (json.dumps(movie(scraped_at="2031-01-01T00:00:00Z")).encode(), "is in the future"),
    (json.dumps(movie(release_date="soon")).encode(), "release_date: expected an ISO date or a year"),
    (json.dumps(movie(popularity="NaN")).encode(), "popularity: expected a finite number"),
    (json.dumps(movie(vote_average="inf")).encode(), "vote_average: expected a finite number"),
    (json.dumps(movie(vote_count=1e20)).encode(), "vote_count: expected a 64-bit integer"),
    (b'["not", "an", "object"]', "expected a JSON object, got ARRAY"),
    (b'{"movie_id": "m1", "title": "caf\xe9", "scraped_at": "2026-01-05T10:00:00Z"}', "not valid UTF-8: byte 0xe9"),
])
def test_bad_line_is_quarantined_with_its_reason(con, landing, line, reason):
    write_lines(landing / "movies" / "a.jsonl", [movie("ok"), line])
    report = load(con, landing)
    assert (report.accepted, report.rejected) == (1, 1)
    (line_number, stored_reason), = rejects(con)
    assert line_number == 2
    assert reason in stored_reason
    raw_text = con.execute("SELECT raw_text FROM raw.movies_rejects").fetchall()[0][0]
    assert raw_text  # the raw text is kept for replay


def test_truncated_last_line_is_named_as_such(con, landing):
    path = landing / "movies" / "a.jsonl"
    write_lines(path, [movie("m1"), b'{"movie_id": "m2", "title": "T", "scraped_at": "2026-01-0'], end=b"")
    report = load(con, landing)
    assert (report.accepted, report.rejected) == (1, 1)
    assert rejects(con)[0][1].startswith("truncated last line")


def test_valid_last_line_without_newline_is_accepted(con, landing):
    write_lines(landing / "movies" / "a.jsonl", [movie("m1"), movie("m2")], end=b"")
    assert load(con, landing).accepted == 2


def test_empty_file_loads_nothing_and_fails_nothing(con, landing):
    (landing / "movies").mkdir(parents=True)
    (landing / "movies" / "empty.jsonl").write_bytes(b"")
    report = load(con, landing)
    assert (report.accepted, report.rejected) == (0, 0)


def test_one_megabyte_text_field_is_accepted_whole(con, landing):
    big = "word " * 200_000
    write_lines(landing / "movies" / "a.jsonl", [movie("m1", overview=big)])
    assert load(con, landing).accepted == 1
    assert con.execute("SELECT length(overview) FROM raw.movies").fetchall()[0][0] == len(big.strip())


def test_unknown_genres_and_extra_columns_are_kept(con, landing):
    write_lines(landing / "movies" / "a.jsonl", [movie("m1", genres=["horror", "cyberpunk"], budget=5, crew={"d": "x"})])
    assert load(con, landing).accepted == 1
    genres, unknown, extras = con.execute("SELECT genres, genres_unknown, extras FROM raw.movies").fetchall()[0]
    assert genres == ["horror"] and unknown == ["cyberpunk"]
    assert json.loads(extras) == {"budget": 5, "crew": {"d": "x"}}


def test_rescraped_movie_is_kept_in_raw_in_every_version(con, landing):
    write_lines(landing / "movies" / "a.jsonl", [movie("m1", popularity=1), movie("m1", popularity=2, scraped_at="2026-01-05T11:00:00Z")])
    write_lines(landing / "movies" / "b.jsonl", [movie("m1", popularity=3, scraped_at="2026-01-05T12:00:00Z")])
    assert load(con, landing).accepted == 3


def test_feedback_duplicate_event_id_counts_once_and_missing_ids_are_derived(con, landing):
    event = {"event_id": "e1", "user_id": "u1", "movie_id": "m1", "event_type": "click", "occurred_at": "2026-01-05T10:00:00Z"}
    anonymous = {"user_id": "u2", "movie_id": "m1", "event_type": "genre_correction", "payload": '{"genres": ["drama"]}',
                 "occurred_at": "2026-01-05T11:00:00Z"}
    write_lines(landing / "feedback" / "a.jsonl", [event, event, anonymous])
    write_lines(landing / "feedback" / "b.jsonl", [event, {**event, "event_type": "teleport", "event_id": "e2"}])
    report = load(con, landing, "feedback")
    assert (report.accepted, report.rejected) == (2, 3)
    reasons = [r for _, r in rejects(con, "feedback_events")]
    assert sum("duplicate event_id: e1 first accepted from feedback/a.jsonl line 1" in r for r in reasons) == 2
    assert report.duplicates == 2 and report.reject_rate == 1 / 3  # re-deliveries are not bad data
    assert any("event_type: teleport is not one of" in r for r in reasons)
    derived = con.execute("SELECT event_id FROM raw.feedback_events WHERE event_id_derived").fetchall()
    write_lines(landing / "feedback" / "a.jsonl", [event, event, anonymous])  # re-landed: same derived id
    load(con, landing, "feedback")
    assert con.execute("SELECT event_id FROM raw.feedback_events WHERE event_id_derived").fetchall() == derived


def test_every_file_accounts_for_every_line(con, landing):
    lines = [movie("m1"), b"garbage", movie("m2", scraped_at="2026-01-06T01:00:00Z"), movie("m3", popularity="x"),
             movie("m4", scraped_at="2999-01-01T00:00:00Z")]
    write_lines(landing / "movies" / "a.jsonl", lines)
    reports = [load(con, landing, day=d) for d in (date(2026, 1, 5), date(2026, 1, 6))]
    accepted = sum(r.accepted for r in reports)
    rejected = sum(r.rejected for r in reports)
    assert accepted + rejected == len(lines) == reports[0].files[0].lines_read
    # the bad line with a valid timestamp lands in its own day; the undatable ones in the file's home day
    assert con.execute("SELECT partition_date, count(*) FROM raw.movies_rejects GROUP BY ALL ORDER BY 1").fetchall() == [
        (date(2026, 1, 5), 3)]


def test_reload_is_idempotent_and_replaces_the_partition(con, landing):
    path = write_lines(landing / "movies" / "a.jsonl", [movie("m1"), movie("m2"), b"bad"])
    load(con, landing)
    first = con.execute("SELECT * EXCLUDE (loaded_at) FROM raw.movies ORDER BY movie_id").fetchall()
    load(con, landing)
    assert con.execute("SELECT * EXCLUDE (loaded_at) FROM raw.movies ORDER BY movie_id").fetchall() == first
    assert len(rejects(con)) == 1
    write_lines(path, [movie("m1")])  # the scraper rewrote the file with fewer rows
    os.utime(path, ns=(1, 1))
    load(con, landing)
    assert con.execute("SELECT movie_id FROM raw.movies").fetchall() == [("m1",)]
    assert rejects(con) == []


def test_crash_mid_load_leaves_the_previous_partition(con, landing, monkeypatch):
    write_lines(landing / "movies" / "a.jsonl", [movie("m1"), movie("m2")])
    load(con, landing)
    write_lines(landing / "movies" / "a.jsonl", [movie("m3")])
    real_execute = duckdb.DuckDBPyConnection.execute

    class Crash(RuntimeError):
        pass

    def crashing(self, sql, *args):
        if sql.startswith("INSERT INTO raw.movies_rejects"):
            raise Crash("power cut")
        return real_execute(self, sql, *args)

    monkeypatch.setattr(duckdb.DuckDBPyConnection, "execute", crashing)
    with pytest.raises(Crash):
        load(con, landing)
    monkeypatch.undo()
    assert con.execute("SELECT movie_id FROM raw.movies ORDER BY 1").fetchall() == [("m1",), ("m2",)]


def test_symlink_outside_the_landing_zone_is_refused(con, landing, tmp_path):
    outside = write_lines(tmp_path / "secret" / "x.jsonl", [movie("evil")])
    (landing / "movies").mkdir(parents=True)
    (landing / "movies" / "link.jsonl").symlink_to(outside)
    report = load(con, landing)
    assert report.accepted == 0
    assert "outside the landing zone" in report.refused[0].reason


def test_csv_and_parquet_follow_the_same_contract(con, landing, tmp_path):
    (landing / "movies").mkdir(parents=True)
    (landing / "movies" / "a.csv").write_text(
        "movie_id,title,genres,scraped_at,popularity\n"
        "c1,Alpha,drama|romance,2026-01-05T09:00:00Z,3\n"
        "c2,Beta,comedy,2026-01-05T09:00:00Z,lots\n"
        "c3,Gamma,comedy\n"
    )
    duckdb.sql(
        "COPY (SELECT 'p1' AS movie_id, 'Pq' AS title, ['horror'] AS genres, "
        "TIMESTAMP '2026-01-05 08:00:00' AS scraped_at) TO '" + str(landing / "movies" / "b.parquet") + "' (FORMAT parquet)"
    )
    report = load(con, landing)
    assert (report.accepted, report.rejected) == (2, 2)
    assert con.execute("SELECT movie_id, genres FROM raw.movies ORDER BY 1").fetchall() == [
        ("c1", ["drama", "romance"]), ("p1", ["horror"])]
    reasons = [r for _, r in rejects(con)]
    assert any("popularity" in r for r in reasons) and any("CSV row has 3 fields" in r for r in reasons)


def test_future_lines_stay_rejected_when_the_partition_is_reloaded_later(con, landing):
    write_lines(landing / "movies" / "a.jsonl", [movie("m1"), movie("m2", scraped_at="2026-01-20T00:00:00Z")])
    assert (load(con, landing).accepted, len(rejects(con))) == (1, 1)
    # a month later the line's date has passed; judged as of when the file landed, the partition is unchanged
    later = load_partition(con, landing, "movies", DAY, now=datetime(2026, 2, 20))
    assert (later.accepted, later.rejected) == (1, 1)
    assert "is in the future" in rejects(con)[0][1]


def test_byte_order_mark_is_ignored(con, landing):
    path = landing / "movies" / "a.jsonl"
    write_lines(path, [movie("m1"), movie("m2")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    (landing / "movies" / "b.csv").write_bytes(b"\xef\xbb\xbfmovie_id,title,scraped_at\nc1,Alpha,2026-01-05T09:00:00Z\n")
    assert (load(con, landing).accepted, rejects(con)) == (3, [])


def test_derived_event_ids_tell_null_fields_apart(con, landing):
    base = {"user_id": "u1", "movie_id": "m1", "event_type": "rating", "occurred_at": "2026-01-05T10:00:00Z"}
    write_lines(landing / "feedback" / "a.jsonl", [{**base, "value": 5.0}, {**base, "payload": '"5.0"'}])
    report = load(con, landing, "feedback")
    assert (report.accepted, report.rejected) == (2, 0)


def test_touched_file_is_not_reread_by_later_loads(con, landing, monkeypatch):
    from trending_assets.lib import ingest

    path = write_lines(landing / "movies" / "a.jsonl", [movie("m1")])
    load(con, landing)
    os.utime(path, ns=(5, 5))  # same bytes, new mtime
    load(con, landing)  # re-reads once and records the new fingerprint
    parsed = []
    monkeypatch.setattr(ingest, "parse_file", lambda *args, **kwargs: parsed.append(args) or pytest.fail("re-read"))
    load(con, landing, day=date(2026, 1, 6))
    assert parsed == []


def test_content_landed_again_is_judged_as_of_its_first_landing(con, landing):
    path = landing / "movies" / "a.jsonl"
    version_a = [movie("m1"), movie("m2", scraped_at="2026-01-20T00:00:00Z")]
    write_lines(path, version_a)
    load(con, landing)
    write_lines(path, [movie("m1")])
    os.utime(path, ns=(10**18, 10**18))
    load_partition(con, landing, "movies", DAY, now=datetime(2026, 1, 11))
    write_lines(path, version_a)  # A -> B -> A: the same bytes as the first delivery
    os.utime(path, ns=(2 * 10**18, 2 * 10**18))
    again = load_partition(con, landing, "movies", DAY, now=datetime(2026, 3, 1))
    assert (again.accepted, again.rejected) == (1, 1)  # m2 is still "in the future" as of the first landing


"""Ingestion benchmark: our landing path side by side with DuckDB's own JSON reader, and its scaling with history.

    .venv/bin/python bench/ingest.py                 # 1M movie rows, 60 days x 20k rows of history
    .venv/bin/python bench/ingest.py --rows 20000 --history-rows 2000 --repeats 1   # smoke run

Two measurements, each repeated (best of ``--repeats``, the two sides alternating so neither always runs second):

* throughput: one day of ``--rows`` movie rows as JSONL; ``load_partition`` into an empty warehouse versus
  ``CREATE TABLE t AS SELECT * FROM read_json(file)`` (default settings), both timed from connect to close, so the
  checkpoint that makes the rows durable counts on both sides. Target: ours / read_json >= 0.5 (in rows/s).
* history: loading day 60 into a warehouse that already holds days 1-59 (their 59 files still landed) versus
  loading day 1 into an empty warehouse (schema created) with only its own file landed. Target: day 60 / day 1
  <= 1.3, timed from connect to the end of ``load_partition``; the checkpoint at close is printed beside it, as its
  cost depends on DuckDB's row-group compaction cycle rather than on the history (see docs/benchmarks.md).

Every timed run is its own child process on a fresh database file and reports its own peak RSS and CPU time, so
one phase's memory never hides another's. The generated data is seeded (same bytes on every run) and entirely
valid, so the baseline can read it with its defaults and ours must accept every row. Exit status 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.ingest import ensure_raw_schema, load_partition  # noqa: E402

DAY = date(2026, 3, 1)  # the throughput day; history runs from HISTORY_START for --history-days days
HISTORY_START = date(2026, 1, 1)
THROUGHPUT_TARGET = 0.5
HISTORY_TARGET = 1.3
CHUNK_ROWS = 100_000

WORDS = (
    "a an the of in on at to with from after before during beyond under without against between across "
    "young old lonely reluctant brilliant retired disgraced ambitious grieving fearless stubborn curious "
    "detective doctor soldier teacher thief pilot farmer journalist scientist musician widow orphan sheriff "
    "family village city kingdom island desert ocean planet station river mountain border prison school "
    "secret mystery conspiracy journey war storm winter summer night dream memory promise debt fortune "
    "must finds discovers learns fights escapes returns hides protects chases uncovers betrays rebuilds "
    "her his their its one two three last first lost forgotten hidden ancient distant broken quiet dangerous "
    "love friendship revenge truth freedom justice power hope fear trust loyalty survival redemption "
    "and but while when until as because so yet or"
).split()
TITLE_WORDS = (
    "Shadow Night Last Lost Red Silent Iron Golden Broken Hidden Distant Wild Dark Bright Cold Burning "
    "River City Heart Storm Garden Empire Road House Island Letter Winter Summer Echo Signal Harbor Crown"
).split()
GENRE_SPELLINGS = (
    "Action", "adventure", "Animation", "comedy", "Crime", "documentary", "Drama", "family", "Fantasy",
    "history", "Horror", "music", "Mystery", "romance", "Sci-Fi", "science fiction", "Thriller", "war", "Western",
)
SOURCES = ("tmdb", "imdb", "letterboxd")
LANGUAGES = ("en", "en", "en", "fr", "es", "de", "it", "ja", "ko", "hi", "pt", "sv")


# --- data -----------------------------------------------------------------------------------------------------


def _word_lists(rng: np.random.Generator, vocab: tuple[str, ...], n: int, low: int, high: int) -> pl.Series:
    """``n`` lists of ``low..high`` words drawn from ``vocab``, built column-wise (no Python loop per row)."""
    lengths = rng.integers(low, high + 1, size=n)
    picks = rng.integers(0, len(vocab), size=int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = pa.array(vocab, pa.string()).take(pa.array(picks))
    return pl.from_arrow(pa.ListArray.from_arrays(pa.array(offsets), values))


def movie_chunk(rng: np.random.Generator, first_id: int, n: int, day: date) -> pl.DataFrame:
    """``n`` plausible scraped movies, all valid under the movies contract, scraped during ``day`` (UTC)."""
    midnight = np.datetime64(day.isoformat(), "ms")
    overview = _word_lists(rng, WORDS, n, 30, 60).list.join(" ")
    runtime = pl.Series(rng.integers(70, 200, size=n))
    return pl.DataFrame({
        "movie_id": "tt" + pl.Series(np.arange(first_id, first_id + n)).cast(pl.String).str.zfill(8),
        "title": _word_lists(rng, TITLE_WORDS, n, 1, 4).list.join(" "),
        "overview": overview.str.slice(0, 1).str.to_uppercase() + overview.str.slice(1) + ".",
        "genres": _word_lists(rng, GENRE_SPELLINGS, n, 1, 3),
        "release_date": pl.Series(np.datetime64("1950-01-01") + rng.integers(0, 27_000, size=n)).dt.strftime(
            "%Y-%m-%d"),
        "scraped_at": pl.Series(midnight + rng.integers(0, 86_400, size=n) * 1000).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": np.asarray(SOURCES)[rng.integers(0, len(SOURCES), size=n)],
        "popularity": np.round(rng.lognormal(2.0, 1.2, size=n), 3),
        "vote_average": np.round(rng.uniform(1.0, 9.5, size=n), 1),
        "vote_count": rng.geometric(1 / 400, size=n),
        "runtime_minutes": runtime.scatter(np.flatnonzero(rng.random(n) < 0.03), None),  # 3% unknown
        "language": np.asarray(LANGUAGES)[rng.integers(0, len(LANGUAGES), size=n)],
    })


def write_movies(path: Path, rows: int, day: date, seed: int) -> Path:
    """Write ``rows`` movies for ``day`` as JSON Lines, in chunks so generation stays small in memory."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for start in range(0, rows, CHUNK_ROWS):
            movie_chunk(rng, seed * 10_000_000 + start, min(CHUNK_ROWS, rows - start), day).write_ndjson(handle)
    return path


# --- one timed run, in a child process ------------------------------------------------------------------------


def _usage() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss": usage.ru_maxrss * 1024, "cpu": usage.ru_utime + usage.ru_stime}  # ru_maxrss: KiB on Linux


def run_ours(db: str, landing_root: str, day: str) -> dict:
    """``load_partition`` of one day into the database file ``db``; connect to close, and the close on its own."""
    started = time.perf_counter()
    con = duckdb.connect(db)
    report = load_partition(con, Path(landing_root), "movies", date.fromisoformat(day),
                            now=datetime.fromisoformat(day) + timedelta(days=1))
    loaded = time.perf_counter()
    con.close()  # checkpoints: writes the WAL into the database file
    closed = time.perf_counter()
    return {"seconds": closed - started, "load_seconds": loaded - started, "close_seconds": closed - loaded,
            "accepted": report.accepted, "rejected": report.rejected, "files_read": len(report.files)}


def run_read_json(db: str, file: str) -> dict:
    """DuckDB's own typed JSON reader landing the same file into a table, default settings; connect to close."""
    started = time.perf_counter()
    con = duckdb.connect(db)
    con.execute("CREATE TABLE t AS SELECT * FROM read_json(?)", [file])
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    loaded = time.perf_counter()
    con.close()
    closed = time.perf_counter()
    return {"seconds": closed - started, "load_seconds": loaded - started, "close_seconds": closed - loaded,
            "accepted": rows, "rejected": 0}


def build_history(db: str, landing_root: str, source_dir: str, days: int) -> dict:
    """Land and load days 1..``days`` one at a time, one connection each, as the daily schedule runs them."""
    movies = Path(landing_root) / "movies"
    movies.mkdir(parents=True, exist_ok=True)
    loads, closes = [], []
    for offset in range(days):
        day = HISTORY_START + timedelta(days=offset)
        name = f"movies-{day}.jsonl"
        os.link(Path(source_dir) / name, movies / name)
        started = time.perf_counter()
        con = duckdb.connect(db)
        report = load_partition(con, Path(landing_root), "movies", day, now=datetime(2026, 12, 31))
        loaded = time.perf_counter()
        con.close()
        closes.append(time.perf_counter() - loaded)
        loads.append(loaded - started)
        assert len(report.files) == 1, f"day {day} read {len(report.files)} files; expected only its own"
    return {"load_seconds": loads, "close_seconds": closes}


CHILDREN = {"ours": run_ours, "read_json": run_read_json, "history": build_history}


def measure(kind: str, **kwargs: str | int) -> dict:
    """Run one child ``kind`` in a fresh interpreter; its result plus its own peak RSS and CPU seconds."""
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps({"kind": kind, **kwargs})],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(spec: str) -> None:
    args = json.loads(spec)
    result = CHILDREN[args.pop("kind")](**args)
    print(json.dumps({**result, **_usage()}))


# --- the benchmark --------------------------------------------------------------------------------------------


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _best(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_rss": max(r["peak_rss"] for r in runs)}


def throughput(work: Path, rows: int, repeats: int) -> bool:
    landing_root = work / "landing"
    file = write_movies(landing_root / "movies" / f"movies-{DAY}.jsonl", rows, DAY, seed=1)
    print(f"\nthroughput: {rows:,} movie rows, one day, {file.stat().st_size / 1e6:,.0f} MB JSONL "
          f"(best of {repeats}, alternating)", flush=True)
    runs: dict[str, list[dict]] = {"ours": [], "read_json": []}
    for attempt in range(repeats):
        order = ["ours", "read_json"] if attempt % 2 == 0 else ["read_json", "ours"]
        for kind in order:
            db = work / f"{kind}-{attempt}.duckdb"
            if kind == "ours":
                result = measure("ours", db=str(db), landing_root=str(landing_root), day=DAY.isoformat())
            else:
                result = measure("read_json", db=str(db), file=str(file))
            assert (result["accepted"], result["rejected"]) == (rows, 0), f"{kind} landed {result}; expected {rows}"
            runs[kind].append(result)
            print(f"  run {attempt + 1} {kind:<9} {result['seconds']:7.2f} s (close {result['close_seconds']:.2f} s)  "
                  f"cpu {result['cpu']:6.2f} s  peak RSS {_gib(result['peak_rss'])}", flush=True)
            db.unlink()
    ours, base = _best(runs["ours"]), _best(runs["read_json"])
    ratio = base["seconds"] / ours["seconds"]
    print(f"  load_partition        {ours['seconds']:7.2f} s  {rows / ours['seconds']:>10,.0f} rows/s  "
          f"peak RSS {_gib(ours['peak_rss'])}")
    print(f"  read_json -> table    {base['seconds']:7.2f} s  {rows / base['seconds']:>10,.0f} rows/s  "
          f"peak RSS {_gib(base['peak_rss'])}")
    passed = ratio >= THROUGHPUT_TARGET
    print(f"  ratio ours/read_json  {ratio:.2f}  (target >= {THROUGHPUT_TARGET})  {'PASS' if passed else 'FAIL'}")
    shutil.rmtree(landing_root)
    return passed


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def history(work: Path, days: int, rows: int, repeats: int) -> bool:
    source, landed = work / "history-files", work / "landing-history"
    for offset in range(days):
        day = HISTORY_START + timedelta(days=offset)
        write_movies(source / f"movies-{day}.jsonl", rows, day, seed=100 + offset)
    last, first = HISTORY_START + timedelta(days=days - 1), HISTORY_START
    print(f"\nhistory: {days} daily files x {rows:,} rows; day {days} with {days - 1} days loaded vs day 1 alone "
          f"(best of {repeats}, alternating)", flush=True)
    built = measure("history", db=str(work / "history.duckdb"), landing_root=str(landed), source_dir=str(source),
                    days=days - 1)
    loads, closes = built["load_seconds"], built["close_seconds"]
    week = min(7, len(loads))
    print(f"  building days 1-{days - 1}, one connection a day: mean load {_mean(loads[:week]):.2f} s (first "
          f"{week} days) vs {_mean(loads[-week:]):.2f} s (last {week}); mean close (checkpoint) "
          f"{_mean(closes[:week]):.2f} s vs {_mean(closes[-week:]):.2f} s, at most {max(closes):.2f} s", flush=True)
    os.link(source / f"movies-{last}.jsonl", landed / "movies" / f"movies-{last}.jsonl")
    alone = work / "landing-day1"
    (alone / "movies").mkdir(parents=True)
    os.link(source / f"movies-{first}.jsonl", alone / "movies" / f"movies-{first}.jsonl")
    runs: dict[str, list[dict]] = {"late": [], "first": []}
    for attempt in range(repeats):
        for kind in (["late", "first"] if attempt % 2 == 0 else ["first", "late"]):
            db = work / f"{kind}-{attempt}.duckdb"
            if kind == "late":
                shutil.copyfile(work / "history.duckdb", db)
                result = measure("ours", db=str(db), landing_root=str(landed), day=last.isoformat())
            else:  # the schema is created untimed: both sides then differ only by the history
                with duckdb.connect(str(db)) as con:
                    ensure_raw_schema(con)
                result = measure("ours", db=str(db), landing_root=str(alone), day=first.isoformat())
            assert (result["accepted"], result["files_read"]) == (rows, 1), f"{kind} loaded {result}"
            runs[kind].append(result)
            db.unlink()
    late, early = (min(runs[k], key=lambda r: r["load_seconds"]) for k in ("late", "first"))
    for label, kind, run in (("day 1, empty warehouse", "first", early),
                             (f"day {days}, {days - 1} days loaded", "late", late)):
        print(f"  {label:<26} load {run['load_seconds']:5.2f} s  + close (checkpoint) {run['close_seconds']:5.2f} s  "
              f"peak RSS {_gib(max(r['peak_rss'] for r in runs[kind]))}")
    ratio = late["load_seconds"] / early["load_seconds"]
    passed = ratio <= HISTORY_TARGET
    verdict = "PASS" if passed else "FAIL"
    print(f"  ratio day {days}/day 1 (load)      {ratio:.2f}  (target <= {HISTORY_TARGET})  {verdict}")
    print(f"  ratio with the checkpoint   {late['seconds'] / early['seconds']:.2f}  (DuckDB re-compresses the small "
          "row groups of recent days when it checkpoints; see docs/benchmarks.md)")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="movie rows in the throughput file")
    parser.add_argument("--history-days", type=int, default=60, help="daily files in the history run")
    parser.add_argument("--history-rows", type=int, default=20_000, help="rows per daily file in the history run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side; the best counts")
    parser.add_argument("--workdir", type=Path, default=None, help="where the files go (default: a temp dir)")
    parser.add_argument("--skip", choices=("throughput", "history"), action="append", default=[])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child)
        return 0
    print(f"{datetime.now():%Y-%m-%d %H:%M}  {describe(duckdb=duckdb.__version__, polars=pl.__version__)}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=args.workdir) as tmp:
        work = Path(tmp)
        passed = True
        if "throughput" not in args.skip:
            passed &= throughput(work, args.rows, args.repeats)
        if "history" not in args.skip:
            passed &= history(work, args.history_days, args.history_rows, args.repeats)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

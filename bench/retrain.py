"""Retraining benchmark: stateless versus stateful XGBoost when a week of new data lands on a 60-day window.

    .venv/bin/python bench/retrain.py                         # 150 movies a day, 200 rounds, 20 extra, best of 3
    .venv/bin/python bench/retrain.py --movies-per-day 50 --rounds 50 --extra-rounds 5 --repeats 1   # smoke run

The simulator writes ``window + new + backtest`` days of landing files into a temporary home. A parent model is
trained stateless on days 1-60 (``--rounds`` rounds). Then, timed in the same run, the two ways to take in the
new week (days 61-67):

* stateless: a new model, ``--rounds`` rounds, on days 8-67 (the 60-day window slid by the week);
* stateful: the parent boosted ``--extra-rounds`` more rounds on only days 61-67.

Each side is timed as wall seconds and CPU seconds of the process (featurizing and boosting; reading the landing
files is left out of both), best of ``--repeats`` with the two sides alternating. Both are scored on the backtest
days (movies first seen after day 67) against the simulator's true genres. Targets: stateless / stateful cost
>= 20 (in CPU seconds) and F1 of stateful within 1 point of stateless (micro and macro). Exit status 1 when a
target is missed.

Rows are the latest scrape of each movie as of the window's last day, so no model sees a later scrape; a movie
belongs to the day it was first scraped. Dagster and DuckDB are left out: this measures the trainers only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trending_assets.lib.features import label_matrix  # noqa: E402
from trending_assets.lib.home import TrendingHome  # noqa: E402
from trending_assets.lib.metrics import summary  # noqa: E402
from trending_assets.lib.simulator import simulate  # noqa: E402
from trending_assets.lib.xgb_trainer import XGBConfig, XGBModel, train_stateful, train_stateless  # noqa: E402

START = date(2026, 1, 1)
COST_TARGET = 20.0  # stateless / stateful, CPU seconds
F1_TOLERANCE = 1.0  # points


# --- data -----------------------------------------------------------------------------------------------------


def read_landing(home: TrendingHome) -> pl.DataFrame:
    """Every landed movie line with the day of its file."""
    frames = []
    for path in sorted(home.landing_dir("movies").glob("movies_*.jsonl")):
        day = date.fromisoformat(path.stem.removeprefix("movies_"))
        frames.append(pl.read_ndjson(path).with_columns(pl.lit(day).alias("day")))
    return pl.concat(frames, how="diagonal_relaxed")


def movies(lines: pl.DataFrame, first: date, last: date, as_of: date | None = None) -> pl.DataFrame:
    """Movies first seen in ``first..last``, each its latest scrape up to ``as_of`` (default ``last``)."""
    seen = lines.filter(pl.col("day") <= (as_of or last))
    latest = (
        seen.sort("day", "scraped_at")
        .group_by("movie_id", maintain_order=True)
        .agg(pl.all().last(), pl.col("day").min().alias("first_seen_date"))
        .drop("day")
    )
    return latest.filter(pl.col("first_seen_date").is_between(first, last)).with_columns(
        pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False).alias("release_year")
    )


# --- measurement ----------------------------------------------------------------------------------------------


def timed(train) -> tuple[XGBModel, float, float]:
    """The model ``train()`` returns, its wall seconds and its process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = train()
    return model, time.perf_counter() - wall, time.process_time() - cpu


def scores(model: XGBModel, backtest: pl.DataFrame, truth: np.ndarray) -> dict:
    predicted = model.predict(backtest)
    frame = pl.DataFrame({"genres": predicted}, schema={"genres": pl.List(pl.String)})
    return summary(truth, label_matrix(frame, model.genres))


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        ram = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except OSError:
        ram = float("nan")
    return f"{model}, {os.cpu_count()} CPUs, {ram:.0f} GiB RAM, Python {platform.python_version()}"


# --- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies-per-day", type=int, default=150)
    parser.add_argument("--window-days", type=int, default=60)
    parser.add_argument("--new-days", type=int, default=7)
    parser.add_argument("--backtest-days", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the parent and of the stateless retrain")
    parser.add_argument("--extra-rounds", type=int, default=20, help="rounds the stateful retrain adds")
    parser.add_argument("--nthread", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    day = lambda n: START + timedelta(days=n - 1)  # noqa: E731  (day 1 is START)
    window_end = args.window_days
    new_end = window_end + args.new_days
    total = new_end + args.backtest_days
    config = XGBConfig(n_rounds=args.rounds, nthread=args.nthread, seed=args.seed)
    print(f"machine: {machine()}")
    print(
        f"data: {total} days x {args.movies_per_day} movies/day; window days 1-{window_end}, "
        f"new days {window_end + 1}-{new_end}, backtest days {new_end + 1}-{total}"
    )

    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        home = TrendingHome(Path(tmp))
        started = time.perf_counter()
        simulate(home, START, total, seed=args.seed, movies_per_day=args.movies_per_day)
        lines = read_landing(home)
        truth_table = pl.read_parquet(home.ground_truth / "movies.parquet").select("movie_id", "true_genres")
        print(f"simulated and read {lines.height} movie lines in {time.perf_counter() - started:.1f} s")

        old = movies(lines, day(1), day(window_end))
        slid = movies(lines, day(1 + args.new_days), day(new_end))
        new = movies(lines, day(window_end + 1), day(new_end))
        backtest = movies(lines, day(new_end + 1), day(total)).join(truth_table, on="movie_id", how="inner")

    parent, parent_wall, parent_cpu = timed(lambda: train_stateless(old, config))
    truth = label_matrix(backtest.select(pl.col("true_genres").alias("genres")), parent.genres)
    print(
        f"rows: parent window {old.height}, slid window {slid.height}, new week {new.height}, "
        f"backtest {backtest.height}"
    )
    print(f"parent: stateless, {args.rounds} rounds on days 1-{window_end}: {parent_wall:.2f} s wall, {parent_cpu:.2f} s CPU")

    runs = {"stateless": [], "stateful": []}
    models = {}
    for repeat in range(args.repeats):
        order = ("stateless", "stateful") if repeat % 2 == 0 else ("stateful", "stateless")
        for side in order:
            if side == "stateless":
                model, wall, cpu = timed(lambda: train_stateless(slid, config))
            else:
                model, wall, cpu = timed(lambda: train_stateful(parent, new, config, args.extra_rounds))
            runs[side].append((wall, cpu, model.report.featurize_seconds, model.report.boost_seconds))
            models[side] = model

    best = {side: min(r, key=lambda run: run[1]) for side, r in runs.items()}
    f1 = {side: scores(models[side], backtest, truth) for side in models}
    f1["parent (no retrain)"] = scores(parent, backtest, truth)

    print(f"\nbest of {args.repeats} (by CPU seconds), nthread={args.nthread}:")
    print(f"{'':>22} {'rows':>7} {'rounds':>7} {'wall s':>8} {'CPU s':>8} {'featurize':>10} {'boost':>8}")
    for side, rows, rounds in (("stateless", slid.height, args.rounds), ("stateful", new.height, args.extra_rounds)):
        wall, cpu, feat, boost = best[side]
        print(f"{side:>22} {rows:>7} {rounds:>7} {wall:>8.3f} {cpu:>8.3f} {feat:>10.3f} {boost:>8.3f}")
    wall_ratio = best["stateless"][0] / best["stateful"][0]
    cpu_ratio = best["stateless"][1] / best["stateful"][1]
    boost_ratio = best["stateless"][3] / best["stateful"][3]
    print(f"cost ratio stateless/stateful: {cpu_ratio:.1f}x CPU, {wall_ratio:.1f}x wall, {boost_ratio:.1f}x boost only")

    print(f"\nbacktest F1 ({backtest.height} movies first seen on days {new_end + 1}-{total}, true genres):")
    for side, s in f1.items():
        print(f"{side:>22}  micro {100 * s['micro_f1']:6.2f}  macro {100 * s['macro_f1']:6.2f}")
    micro_delta = 100 * (f1["stateful"]["micro_f1"] - f1["stateless"]["micro_f1"])
    macro_delta = 100 * (f1["stateful"]["macro_f1"] - f1["stateless"]["macro_f1"])
    print(f"stateful - stateless: micro {micro_delta:+.2f} points, macro {macro_delta:+.2f} points")

    cost_ok = cpu_ratio >= COST_TARGET
    f1_ok = micro_delta >= -F1_TOLERANCE and macro_delta >= -F1_TOLERANCE
    print(f"\ncost target  >= {COST_TARGET:.0f}x: {'PASS' if cost_ok else 'FAIL'} ({cpu_ratio:.1f}x)")
    print(f"F1 target within {F1_TOLERANCE:.0f} point: {'PASS' if f1_ok else 'FAIL'} "
          f"(micro {micro_delta:+.2f}, macro {macro_delta:+.2f})")
    return 0 if cost_ok and f1_ok else 1


if __name__ == "__main__":
    sys.exit(main())

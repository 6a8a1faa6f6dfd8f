"""Retraining benchmark: stateless versus stateful XGBoost and transformer when a week lands on a 60-day window.

    .venv/bin/python bench/retrain.py                         # 150 movies a day, 200 rounds, 10 extra, best of 3
    .venv/bin/python bench/retrain.py --movies-per-day 30 --rounds 20 --extra-rounds 5 --repeats 1 \
        --tf-rows 64 --tf-max-length 32 --tf-epochs 1       # smoke run
    .venv/bin/python bench/retrain.py --no-transformer        # the XGBoost part only

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

The transformer part (``--transformer``, on by default) does the same for the genre transformer on a bounded
size, with the training asset's recipe: the same stable share of every day's movies is kept so that the slid
window holds about ``--tf-rows`` movies (the new week then holds its seven days' worth, not ``--tf-rows``),
``--tf-epochs`` epochs, ``--tf-max-length`` tokens a movie, on CUDA when torch sees a GPU, else the CPU. The
static test set (``windows.split_static_test`` of the window's movies) is held out of every transformer run. A
parent is fine-tuned stateless from the bundled MiniLM on days 1-60; then, one run each (about a minute a run on
two CPU cores at the defaults), stateless on days 8-67 versus stateful from the parent on days 61-67 with a
``--tf-replay-share`` of replayed window movies, and stateful without replay, to show what replay buys. Each is
reported with its cost (wall and CPU seconds, stateless / stateful ratios), its backtest F1 and its forgetting:
the parent's macro F1 on the static test movies minus the child's (negative: the child improved). The
transformer has no target; the exit status is the XGBoost part's.

Rows are the latest scrape of each movie as of the window's last day, so no model sees a later scrape; a movie
belongs to the day it was first scraped. Transformers train on labeled movies only (as XGBoost does). Dagster
and DuckDB are left out: this measures the trainers only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.features import label_matrix  # noqa: E402
from trending_assets.lib.genre_model import predict_labels  # noqa: E402
from trending_assets.lib.home import TrendingHome  # noqa: E402
from trending_assets.lib.metrics import summary  # noqa: E402
from trending_assets.lib.sampling import unit_hash  # noqa: E402
from trending_assets.lib.simulator import simulate  # noqa: E402
from trending_assets.lib.transformer_model import TransformerConfig  # noqa: E402
from trending_assets.lib.windows import split_static_test  # noqa: E402
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


def timed(train):
    """What ``train()`` returns, its wall seconds and its process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = train()
    return model, time.perf_counter() - wall, time.process_time() - cpu


def scores(model: XGBModel, backtest: pl.DataFrame, truth: np.ndarray) -> dict:
    predicted = model.predict(backtest)
    frame = pl.DataFrame({"genres": predicted}, schema={"genres": pl.List(pl.String)})
    return summary(truth, label_matrix(frame, model.genres))


# --- transformer ----------------------------------------------------------------------------------------------


def true_scores(model, frame: pl.DataFrame) -> dict:
    """F1 summary of a transformer's genres on ``frame`` against its ``true_genres``."""
    _, predicted = predict_labels(model, frame)
    return summary(label_matrix(frame.select(pl.col("true_genres").alias("genres")), model.genres), predicted)


def transformer_part(
    config: TransformerConfig, old: pl.DataFrame, slid: pl.DataFrame, new: pl.DataFrame, backtest: pl.DataFrame,
    truth_table: pl.DataFrame, days: tuple[int, int],
) -> None:
    """Time and score the transformer: a parent, then stateless on the slid window versus stateful with and
    without replay. ``days`` is (last window day, last new day)."""
    # torch and transformers load only when this part runs, so --no-transformer stays quick.
    import torch

    from trending_assets.lib.transformer_trainer import default_base_dir, train_stateful, train_stateless

    window_end, new_end = days
    static_test, _ = split_static_test(old)
    held_out = static_test["movie_id"].implode()
    static_test = static_test.join(truth_table, on="movie_id", how="inner")
    old_rows, slid_rows, new_rows = (
        frame.filter(~pl.col("movie_id").is_in(held_out), pl.col("genres").list.len() > 0)
        for frame in (old, slid, new)
    )
    # Bounded size: the same share of every day's movies (a stable hash of the id), so the slid window holds about
    # max_rows movies and the new week its seven days' worth; capping each run at max_rows instead would train
    # stateless and stateful on equally many rows and hide what stateful saves.
    share = min(1.0, config.max_rows / max(slid_rows.height, 1))
    old_rows, slid_rows, new_rows = (
        frame.filter(pl.col("movie_id").map_elements(lambda m: unit_hash("bench-retrain", m) < share,
                                                     return_dtype=pl.Boolean))
        for frame in (old_rows, slid_rows, new_rows)
    )
    base = default_base_dir()
    print(
        f"\ntransformer (no target): max_rows {config.max_rows}, max_length {config.max_length}, "
        f"{config.epochs} epoch(s), batch {config.batch_size}, lr {config.learning_rate:g} (head "
        f"{config.head_learning_rate:g}); {static_test.height} static test movies held out; labeled training "
        f"movies ({share:.1%} of each day's): window {old_rows.height}, slid window {slid_rows.height}, "
        f"new week {new_rows.height}"
    )

    parent_name, stateless = f"parent d1-{window_end}", f"stateless d{new_end - window_end + 1}-{new_end}"
    print(f"training {parent_name} ...", flush=True)
    (parent, parent_report), wall, cpu = timed(lambda: train_stateless(old_rows, base, config))
    runs = {parent_name: (parent, parent_report, wall, cpu)}  # name -> (model, report, wall s, CPU s)
    trainers = {
        stateless: lambda: train_stateless(slid_rows, base, config),
        f"stateful {config.replay_share:.0%} replay": lambda: train_stateful(parent, new_rows, old_rows, config),
    }
    if config.replay_share > 0:
        no_replay = dataclasses.replace(config, replay_share=0.0)
        trainers["stateful no replay"] = lambda: train_stateful(parent, new_rows, None, no_replay)
    for name, train in trainers.items():
        print(f"training {name} ...", flush=True)
        (model, report), wall, cpu = timed(train)
        runs[name] = (model, report, wall, cpu)
    stateful = list(trainers)[1:]

    device = parent_report.device
    threads = "" if device.startswith("cuda") else f", {torch.get_num_threads()} torch threads"
    print(f"\none run each (the parent warms up first), device {device}{threads}:")
    print(f"{'':>22} {'new':>5} {'replay':>6} {'steps':>6} {'wall s':>8} {'CPU s':>8} {'train s':>8} {'ex/s':>7}")
    for name, (_, report, wall, cpu) in runs.items():
        print(f"{name:>22} {report.rows_new:>5} {report.rows_replay:>6} {report.steps:>6} {wall:>8.2f} {cpu:>8.2f} "
              f"{report.train_seconds:>8.2f} {report.examples_per_second:>7.1f}")
    for name in stateful:
        cpu_ratio = runs[stateless][3] / runs[name][3]
        wall_ratio = runs[stateless][2] / runs[name][2]
        print(f"cost ratio stateless/{name}: {cpu_ratio:.2f}x CPU, {wall_ratio:.2f}x wall")

    print(f"\nbacktest F1 ({backtest.height} movies, true genres) and static test macro F1 ({static_test.height} "
          f"window movies); forgetting = parent - model on the static test, in points:")
    print(f"{'':>22} {'micro':>7} {'macro':>7} {'static':>7} {'forgetting':>10}")
    scores_of = {
        name: (true_scores(model, backtest), true_scores(model, static_test)) for name, (model, *_) in runs.items()
    }
    parent_static = scores_of[parent_name][1]["macro_f1"]
    for name, (back, static) in scores_of.items():
        forgetting = "" if name == parent_name else f"{100 * (parent_static - static['macro_f1']):+.2f}"
        print(f"{name:>22} {100 * back['micro_f1']:7.2f} {100 * back['macro_f1']:7.2f} "
              f"{100 * static['macro_f1']:7.2f} {forgetting:>10}")
    for name in stateful:
        micro = 100 * (scores_of[name][0]["micro_f1"] - scores_of[stateless][0]["micro_f1"])
        macro = 100 * (scores_of[name][0]["macro_f1"] - scores_of[stateless][0]["macro_f1"])
        print(f"{name} - stateless: backtest micro {micro:+.2f} points, macro {macro:+.2f} points")


# --- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies-per-day", type=int, default=150)
    parser.add_argument("--window-days", type=int, default=60)
    parser.add_argument("--new-days", type=int, default=7)
    parser.add_argument("--backtest-days", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the parent and of the stateless retrain")
    parser.add_argument("--extra-rounds", type=int, default=10, help="rounds the stateful retrain adds")
    parser.add_argument("--nthread", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transformer", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the genre transformer on a bounded size (default: on)")
    parser.add_argument("--tf-rows", type=int, default=600,
                        help="movies in the transformer's slid window (every day sampled at the same share)")
    parser.add_argument("--tf-max-length", type=int, default=64, help="tokens a movie for the transformer")
    parser.add_argument("--tf-epochs", type=int, default=2, help="epochs of every transformer run")
    parser.add_argument("--tf-replay-share", type=float, default=0.3,
                        help="share of the stateful transformer run's rows replayed from the window, in [0, 1)")
    args = parser.parse_args()
    try:  # the training asset's defaults (TransformerTrainingConfig), bounded by the flags
        tf_config = TransformerConfig(
            epochs=args.tf_epochs, max_rows=args.tf_rows, max_length=args.tf_max_length, batch_size=16,
            learning_rate=1e-4, head_learning_rate=3e-3, replay_share=args.tf_replay_share, device="auto",
            seed=args.seed,
        )
    except ValueError as error:
        parser.error(str(error))

    day = lambda n: START + timedelta(days=n - 1)  # noqa: E731  (day 1 is START)
    window_end = args.window_days
    new_end = window_end + args.new_days
    total = new_end + args.backtest_days
    config = XGBConfig(n_rounds=args.rounds, nthread=args.nthread, seed=args.seed)
    print(f"machine: {describe()}")
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

    if args.transformer:
        transformer_part(tf_config, old, slid, new, backtest, truth_table, (window_end, new_end))

    cost_ok = cpu_ratio >= COST_TARGET
    f1_ok = micro_delta >= -F1_TOLERANCE and macro_delta >= -F1_TOLERANCE
    print(f"\nXGBoost cost target >= {COST_TARGET:.0f}x: {'PASS' if cost_ok else 'FAIL'} ({cpu_ratio:.1f}x)")
    print(f"XGBoost F1 target within {F1_TOLERANCE:.0f} point: {'PASS' if f1_ok else 'FAIL'} "
          f"(micro {micro_delta:+.2f}, macro {macro_delta:+.2f})")
    return 0 if cost_ok and f1_ok else 1


if __name__ == "__main__":
    sys.exit(main())

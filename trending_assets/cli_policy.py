"""`trending policy-layer start|reset|stop|show`: the genre-threshold policy layer over the champion's scores.

Each command records the change in the warehouse and republishes serving/genre_thresholds.json at once, so the API
applies it on its next reload; the ``serving/genre_thresholds`` asset learns after every feedback update.
"""

from __future__ import annotations

import argparse
from datetime import date

from trending_assets import environment


def cmd_start(args: argparse.Namespace) -> None:
    from trending_assets.lib import experiment_store, policy_layer_store, warehouse

    thresholds = _thresholds(args.thresholds)
    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        version, genres, baseline = policy_layer_store.champion_genres(con)
        layer = policy_layer_store.start(con, version, genres, baseline,
                                         experiment_store.watermark(con) or date(1970, 1, 1), thresholds,
                                         floor=args.floor, warmup=args.warmup)
    policy_layer_store.publish(layer, home.genre_thresholds)
    print(f"policy layer {layer.layer_id} running for {layer.model_version}: {len(layer.genres)} genres, each drawing "
          f"its tag threshold from {layer.thresholds} (uniform until each has {layer.warmup} requests, then Thompson "
          f"sampling on label accuracy with {layer.floor:.0%} spread evenly); applied to champion-served users "
          f"outside model experiments; published {home.genre_thresholds}")


def cmd_reset(args: argparse.Namespace) -> None:
    from trending_assets.lib import experiment_store, policy_layer_store, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        layer = policy_layer_store.get(con)
        layer = policy_layer_store.reset(con, experiment_store.watermark(con) or (layer.epoch if layer else None),
                                         args.reason)
    policy_layer_store.publish(layer, home.genre_thresholds)
    print(f"reset {layer.layer_id}: every genre is back to its prior (uniform over {layer.thresholds}); only logs "
          f"after {layer.epoch} count; {args.reason}")


def cmd_stop(args: argparse.Namespace) -> None:
    from trending_assets.lib import policy_layer_store, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        policy_layer_store.stop(con, args.reason)
        layer = policy_layer_store.get(con)
    policy_layer_store.publish(layer, home.genre_thresholds)
    print(f"stopped {layer.layer_id}: the model's own threshold {layer.baseline:g} serves every genre again; "
          f"{args.reason}")


def cmd_show(args: argparse.Namespace) -> None:
    from trending_assets.lib import policy_layer_store, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse, read_only=True) as con:
        layer = policy_layer_store.get(con)
        if layer is None:
            raise ValueError("no policy layer yet; start one with `trending policy-layer start`")
        print(f"{layer.layer_id}: {layer.status} for {layer.model_version}, learning from logs after {layer.epoch}")
        for line in policy_layer_store.history_lines(con, layer):
            print(f"  {line}")


def _thresholds(text: str) -> list[float]:
    from trending_assets.lib.policy_layer import check_thresholds

    try:
        return list(check_thresholds([float(t) for t in text.split(",") if t.strip()]))
    except ValueError:
        raise ValueError(f"--thresholds {text!r}: give at least two distinct numbers strictly between 0 and 1, "
                         "separated by commas, e.g. 0.2,0.3,0.4,0.5,0.6,0.7") from None


def add_parsers(sub, positive) -> None:
    layer = sub.add_parser("policy-layer", help="the genre-threshold policy layer over the champion, adapted by "
                                                "bandits from labels")
    layer_sub = layer.add_subparsers(dest="layer_command", required=True)
    start = layer_sub.add_parser("start", help="start the layer for the current champion")
    start.add_argument("--thresholds", default="0.2,0.3,0.4,0.5,0.6,0.7", help="candidate thresholds per genre")
    start.add_argument("--floor", type=float, default=0.1, help="share of traffic spread evenly over thresholds")
    start.add_argument("--warmup", type=positive, default=20, help="requests per threshold before a genre moves")
    start.set_defaults(func=cmd_start)
    reset = layer_sub.add_parser("reset", help="forget what it learned; only later logs count")
    reset.add_argument("--reason", required=True)
    reset.set_defaults(func=cmd_reset)
    stop = layer_sub.add_parser("stop", help="stop applying it: the model's threshold serves again")
    stop.add_argument("--reason", required=True)
    stop.set_defaults(func=cmd_stop)
    show = layer_sub.add_parser("show", help="its state: learned thresholds, OPE and history")
    show.set_defaults(func=cmd_show)

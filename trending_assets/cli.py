"""The `trending` command: simulate a world, run the graph headless, run the demo, query the warehouse."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from trending_assets import environment
from trending_assets.lib.home import TrendingHome


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-01-05") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def cmd_simulate(args: argparse.Namespace) -> None:
    from trending_assets.lib.simulator import simulate

    home = environment.configure()
    summary = simulate(home, args.start, args.days, scenario=args.scenario, seed=args.seed,
                       movies_per_day=args.movies_per_day, users=args.users, noise=args.noise)
    print(f"simulated {args.days} day(s) from {args.start} ({summary.scenario}, seed {summary.seed}) into "
          f"{home.landing}: " + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items()))


def cmd_materialize(args: argparse.Namespace) -> None:
    from trending_assets import headless

    environment.configure()
    headless.materialize_range(args.start, args.end or args.start, args.select)


def cmd_query(args: argparse.Namespace) -> None:
    import duckdb

    from trending_assets.lib import warehouse

    home = TrendingHome.from_env()  # read-only: creates nothing
    with warehouse.read_snapshot(home.warehouse_snapshot) as con:
        try:
            relation = con.sql(args.sql)
            frame = relation.pl() if relation is not None else None
        except duckdb.Error as error:
            raise SystemExit(f"trending query: {error}") from None
    if frame is not None:
        print(frame if args.format == "table" else frame.write_csv(), end="\n")


def cmd_status(args: argparse.Namespace) -> None:
    from trending_assets.lib import summary, warehouse

    with warehouse.read_snapshot(TrendingHome.from_env().warehouse_snapshot) as con:
        print(summary.render(con))


def cmd_demo(args: argparse.Namespace) -> None:
    from trending_assets import demo
    from trending_assets.lib import summary, warehouse

    plan = demo.DemoPlan(weeks=args.weeks, bootstrap_weeks=args.bootstrap_weeks, drift_week=args.drift_week,
                         scenario=args.scenario, seed=args.seed, noise=args.noise,
                         movies_per_day=args.movies_per_day, families=args.families,
                         min_new_labeled=args.min_new, cooldown_hours=args.cooldown_hours,
                         step_timeout_s=args.timeout)
    home = environment.configure()
    demo.run(plan, home)
    with warehouse.read_snapshot(home.warehouse_snapshot) as con:
        print(summary.render(con))
    print(f"\nquery it:   .venv/bin/trending query \"SELECT * FROM ml.retraining_log\"\n"
          f"drift:      .venv/bin/trending query \"SELECT * FROM monitoring.drift_reports WHERE drifted\"   "
          f"(plots: {home.reports})\n"
          f"browse it:  make dev   (Dagster UI: lineage landing -> raw -> marts -> monitoring, windows -> models; "
          f"Automation: sensors, schedule)\n"
          f"state:      {home.root}")


def cmd_retrain(args: argparse.Namespace) -> None:
    from trending_assets import headless

    environment.configure()
    outcome = headless.retrain(args.reason)
    if outcome == "failure":
        raise SystemExit("the retrain run failed; open `make dev` (Runs) for its logs; the champion is unchanged")


def parser() -> argparse.ArgumentParser:
    from trending_assets.lib.simulator import SCENARIOS

    root = argparse.ArgumentParser(prog="trending", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write landing files for a simulated world")
    sim.add_argument("--start", type=_date, required=True)
    sim.add_argument("--days", type=_positive, required=True)
    sim.add_argument("--scenario", choices=SCENARIOS, default="stable")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--movies-per-day", type=_positive, default=120)
    sim.add_argument("--users", type=_positive, default=150)
    sim.add_argument("--noise", type=float, default=0.0, help="share of garbage lines, to exercise quarantine")
    sim.set_defaults(func=cmd_simulate)

    mat = sub.add_parser("materialize", help="run ingestion for each day, then dbt and windows, via Dagster")
    mat.add_argument("--start", type=_date, required=True)
    mat.add_argument("--end", type=_date, help="last day (default: --start)")
    mat.add_argument("--select", help="Dagster asset selection, e.g. 'group:ingest' or 'key:raw/movies+'")
    mat.set_defaults(func=cmd_materialize)

    demo = sub.add_parser("demo", help="simulate weeks landing one at a time; the daemon monitors and retrains")
    demo.add_argument("--weeks", type=_positive, default=6)
    demo.add_argument("--bootstrap-weeks", type=_positive, default=2, help="weeks landed before the first champion")
    demo.add_argument("--drift-week", type=_positive, default=5, help="the drift starts on this week's first day")
    demo.add_argument("--scenario", choices=SCENARIOS, default="vocabulary_drift")
    demo.add_argument("--families", default="xgboost", help="model families a retrain trains, comma-separated "
                      "(xgboost,transformer: the transformer adds 1-2 minutes per retrain on 2 CPU cores)")
    demo.add_argument("--min-new", type=_positive, default=1200, help="volume trigger: new labeled movies")
    demo.add_argument("--cooldown-hours", type=float, default=0.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--noise", type=float, default=0.002)
    demo.add_argument("--movies-per-day", type=_positive, default=120)
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each week to settle")
    demo.set_defaults(func=cmd_demo)

    retrain = sub.add_parser("retrain", help="retrain now (a manual trigger), recorded in ml.retraining_log")
    retrain.add_argument("--reason", required=True, help="why, in a sentence: it is kept with the run")
    retrain.set_defaults(func=cmd_retrain)

    query = sub.add_parser("query", help="run SQL on the read-only warehouse snapshot")
    query.add_argument("sql")
    query.add_argument("--format", choices=("table", "csv"), default="table")
    query.set_defaults(func=cmd_query)

    status = sub.add_parser("status", help="rows per table and the newest windows")
    status.set_defaults(func=cmd_status)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, TimeoutError) as error:
        print(f"trending {args.command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except BrokenPipeError:  # `trending query ... | head`
        sys.stderr.close()


if __name__ == "__main__":
    main()

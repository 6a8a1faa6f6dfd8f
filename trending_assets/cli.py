"""The `trending` command: simulate a world, run the graph headless, run the demo, query the warehouse."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from trending_assets import cli_experiments, cli_policy, environment
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
    from trending_assets.lib import experiment_report, summary, warehouse

    plan = demo.DemoPlan(weeks=args.weeks, bootstrap_weeks=args.bootstrap_weeks, drift_week=args.drift_week,
                         scenario=args.scenario, seed=args.seed, noise=args.noise,
                         movies_per_day=args.movies_per_day, families=args.families,
                         min_new_labeled=args.min_new, cooldown_hours=args.cooldown_hours,
                         step_timeout_s=args.timeout, production_days=args.production_days, bad_days=args.bad_days,
                         ranker_days=args.ranker_days, traffic_users=args.traffic_users, approval=args.approval)
    home = environment.configure()
    demo.run(plan, home)
    with warehouse.read_snapshot(home.warehouse_snapshot) as con:
        print(summary.render(con))
    with warehouse.connect(home.warehouse) as con:  # the daemon has stopped: the freshest state
        print("\n" + experiment_report.render(con))
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


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from trending_assets.api.app import create_app

    home = environment.configure()
    print(f"serving {home.deployment_plan} on http://{args.host}:{args.port} (docs: /docs); events -> "
          f"{home.landing_dir('feedback')}")
    uvicorn.run(create_app(home), host=args.host, port=args.port, log_level=args.log_level)


def cmd_simulate_traffic(args: argparse.Namespace) -> None:
    from trending_assets import traffic

    home = environment.configure()
    start = args.start or _default_traffic_start(home)
    traffic.run_days(home, start, args.days, users=args.users, url=args.url, seed=args.seed)


def _default_traffic_start(home: TrendingHome) -> date:
    """The day after the newest simulated world day (ground truth), so traffic follows the world."""
    import json

    record = home.ground_truth / "scenario.json"
    if not record.exists():
        raise ValueError(f"no simulated world in {home.ground_truth}; run `trending simulate` first or pass --start")
    days = json.loads(record.read_text()).get("simulated_days") or []
    if not days:
        raise ValueError("the simulated world has no days yet; pass --start YYYY-MM-DD")
    return date.fromisoformat(max(days))


def cmd_approve(args: argparse.Namespace) -> None:
    import getpass

    from trending_assets.lib import rollout, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        after = rollout.approve(con, args.version, f"person:{args.approver or getpass.getuser()}", args.reason)
        plan = rollout.publish_plan(con, home.deployment_plan)
    print(f"approved {args.version}: {after.experiment_id} {after.phase}; champion is now {plan.champion} "
          f"(plan {plan.plan_id} published)")


def cmd_rollback(args: argparse.Namespace) -> None:
    import getpass

    from trending_assets.lib import rollout, rollout_control, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        line = rollout_control.rollback(con, args.target, args.reason, f"person:{getpass.getuser()}")
        plan = rollout.publish_plan(con, home.deployment_plan)
    print(f"{line}; plan {plan.plan_id if plan else None} published")


def cmd_experiments(args: argparse.Namespace) -> None:
    from trending_assets.lib import experiment_report, warehouse

    with warehouse.read_snapshot(TrendingHome.from_env().warehouse_snapshot) as con:
        print(experiment_report.render(con))


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
    demo.add_argument("--weeks", type=_positive, default=4)
    demo.add_argument("--bootstrap-weeks", type=_positive, default=2, help="weeks landed before the first champion")
    demo.add_argument("--drift-week", type=_positive, default=3, help="the drift starts on this week's first day")
    demo.add_argument("--scenario", choices=SCENARIOS, default="new_genre",
                      help="new_genre: documentaries appear from --drift-week on, which the first champion has "
                      "never seen; a retrained challenger can tag them, and the A/B test sees users click them")
    demo.add_argument("--families", default="xgboost", help="model families a retrain trains, comma-separated "
                      "(xgboost,transformer: the transformer adds 1-2 minutes per retrain on 2 CPU cores)")
    demo.add_argument("--min-new", type=_positive, default=1200, help="volume trigger: new labeled movies")
    demo.add_argument("--cooldown-hours", type=float, default=0.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--noise", type=float, default=0.002)
    demo.add_argument("--movies-per-day", type=_positive, default=120)
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each week to settle")
    demo.add_argument("--production-days", type=int, default=8, help="days of API traffic for the staged "
                      "challenger's rollout (0: stop after the weeks)")
    demo.add_argument("--bad-days", type=int, default=6, help="days for a deliberately bad challenger (0: skip)")
    demo.add_argument("--ranker-days", type=int, default=2, help="days for the ranker interleaving test and bandit "
                      "(0: skip)")
    demo.add_argument("--traffic-users", type=_positive, default=6000, help="simulated API users (70%% a day)")
    demo.add_argument("--approval", choices=("auto", "manual"), default="auto",
                      help="manual: a validated challenger waits for `trending approve`")
    demo.set_defaults(func=cmd_demo)

    retrain = sub.add_parser("retrain", help="retrain now (a manual trigger), recorded in ml.retraining_log")
    retrain.add_argument("--reason", required=True, help="why, in a sentence: it is kept with the run")
    retrain.set_defaults(func=cmd_retrain)

    serve = sub.add_parser("serve", help="run the serving API (FastAPI + uvicorn) on the deployment plan")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive, default=8000)
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(func=cmd_serve)

    traffic = sub.add_parser("simulate-traffic", help="simulated users browse the API (in-process by default, or "
                             "over HTTP with --url); their clicks depend on how good the served genres are")
    traffic.add_argument("--days", type=_positive, required=True)
    traffic.add_argument("--users", type=_positive, default=3000, help="daily audience (70%% visit each day)")
    traffic.add_argument("--start", type=_date, help="first day (default: the newest simulated world day)")
    traffic.add_argument("--url", help="drive a running `trending serve` over HTTP, e.g. http://127.0.0.1:8000")
    traffic.add_argument("--seed", type=int, default=0)
    traffic.set_defaults(func=cmd_simulate_traffic)

    approve = sub.add_parser("approve", help="promote a production-validated challenger waiting for approval")
    approve.add_argument("version", help="e.g. xgboost-v5")
    approve.add_argument("--reason", required=True)
    approve.add_argument("--approver", help="who approves (default: your login name)")
    approve.set_defaults(func=cmd_approve)

    rollback = sub.add_parser("rollback", help="roll back the active canary, or the champion to its previous version")
    rollback.add_argument("--reason", required=True)
    rollback.add_argument("--target", choices=("canary", "champion"), default="canary")
    rollback.set_defaults(func=cmd_rollback)

    cli_experiments.add_parsers(sub, _positive)
    cli_policy.add_parsers(sub, _positive)

    experiments = sub.add_parser("experiments", help="rollouts, their phase history and latest verdicts")
    experiments.set_defaults(func=cmd_experiments)

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

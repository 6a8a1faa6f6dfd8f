"""`trending ab`, `trending interleave`, `trending bandit` and `trending ranker`: the serving-surface experiments.

Each command records the experiment in the warehouse and republishes the deployment plan at once, so the API
serves it on its next plan reload; the Dagster assets in ``defs/experiments`` analyse and decide it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

from trending_assets import environment


def cmd_ab_start(args: argparse.Namespace) -> None:
    from trending_assets.lib import ab_tests, experiment_store, rollout, vibe_tags, warehouse

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for name in variants:
        vibe_tags.generator_for(name)  # ValueError naming the known generators
    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        started = experiment_store.watermark(con) or date(1970, 1, 1)
        spread = ab_tests.pre_period_spread(con, started)
        test = ab_tests.start(con, args.id, args.surface, variants, started, mde=args.mde,
                              baseline=spread[0] if spread else 0.1, sd=spread[1] if spread else None)
        plan = rollout.publish_plan(con, home.deployment_plan)
    print(f"A/B test {test.experiment_id} running on {test.surface}: {', '.join(variants)} (control first); power "
          f"analysis: {test.planned_users_per_arm} users per arm for an MDE of {test.mde} in click-through; plan "
          f"{plan.plan_id if plan else '(none yet: no champion)'} published")


def cmd_interleave_start(args: argparse.Namespace) -> None:
    from trending_assets.lib import experiment_store, ranking_tests, rollout, warehouse

    rankers = [r.strip() for r in args.rankers.split(",") if r.strip()]
    if len(rankers) != 2:
        raise ValueError(f"--rankers {args.rankers!r}: give exactly two rankers, the incumbent first "
                         "(e.g. popularity,genre_taste)")
    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        started = experiment_store.watermark(con) or date(1970, 1, 1)
        test = ranking_tests.start(con, args.id, *rankers, started, min_users=args.min_users, design=args.design)
        plan = rollout.publish_plan(con, home.deployment_plan)
    print(f"interleaving test {test.experiment_id} running: {test.design} lists from {test.ranker_a} (A) and "
          f"{test.ranker_b} (B); decided by a sign test once {test.min_users} users have a preference; plan "
          f"{plan.plan_id if plan else '(none yet: no champion)'} published")


# ranking_bandits.POLICIES' keys, named here so that building the parser imports no numpy
POLICY_NAMES = {"thompson": "Thompson sampling", "ucb1": "UCB1", "epsilon_greedy": "epsilon-greedy"}


def cmd_bandit_start(args: argparse.Namespace) -> None:
    from trending_assets.lib import experiment_store, ranking_bandits, rollout, warehouse

    arms = [r.strip() for r in args.rankers.split(",") if r.strip()]
    params = _policy_params(args)
    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        experiment_store.ensure_schema(con)
        started = experiment_store.watermark(con) or date(1970, 1, 1)
        bandit = ranking_bandits.start(con, args.id, arms, started, floor=args.floor, warmup=args.warmup,
                                       policy=args.policy, params=params)
        plan = rollout.publish_plan(con, home.deployment_plan)
    explore = f" (epsilon {params['epsilon']:g})" if "epsilon" in params else ""
    print(f"bandit {bandit.experiment_id} running over {', '.join(arms)}: uniform until each has {bandit.warmup} "
          f"requests, then {POLICY_NAMES[bandit.policy]}{explore} on clicks with {bandit.floor:.0%} spread evenly; "
          f"plan {plan.plan_id if plan else '(none yet: no champion)'} published")


def _policy_params(args: argparse.Namespace) -> dict:
    """The chosen policy's parameters from the flags; a flag of another policy is an error, not silently ignored."""
    if args.policy != "epsilon_greedy":
        if args.epsilon is not None:
            raise ValueError(f"--epsilon {args.epsilon:g} applies to --policy epsilon_greedy only, not "
                             f"{args.policy}; drop it or choose epsilon_greedy")
        return {}
    epsilon = 0.1 if args.epsilon is None else args.epsilon
    if not 0 <= epsilon <= 1:
        raise ValueError(f"--epsilon {epsilon:g}: give the share of traffic explored uniformly, in [0, 1]")
    return {"epsilon": epsilon}


def _stop(args: argparse.Namespace, label: str, running: Callable, stop: Callable) -> None:
    """End the running experiment ``args.id`` (``running(con)`` lists them, ``stop(con, id, reason)`` ends one) and
    republish the plan without it."""
    from trending_assets.lib import rollout, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        if args.id not in {e.experiment_id for e in running(con)}:
            raise ValueError(f"no running {label} {args.id!r}; `trending experiments` lists them")
        stop(con, args.id, args.reason)
        rollout.publish_plan(con, home.deployment_plan)
    print(f"stopped {args.id}: {args.reason}")


def cmd_ab_stop(args: argparse.Namespace) -> None:
    from trending_assets.lib import ab_tests

    _stop(args, "A/B test", ab_tests.running, lambda con, id_, why: ab_tests.finish(con, id_, "stopped", why))


def cmd_interleave_stop(args: argparse.Namespace) -> None:
    from trending_assets.lib import ranking_tests

    _stop(args, "interleaving test", ranking_tests.running,
          lambda con, id_, why: ranking_tests.finish(con, id_, "stopped", why))


def cmd_bandit_stop(args: argparse.Namespace) -> None:
    from trending_assets.lib import ranking_bandits

    _stop(args, "bandit", ranking_bandits.running, ranking_bandits.stop)


def cmd_ranker_propose(args: argparse.Namespace) -> None:
    from trending_assets.lib import ranker_candidates, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        candidate = ranker_candidates.propose(con, args.ranker, args.by or _login(), args.reason, design=args.design,
                                              allocation_percent=args.allocation)
        incumbent = ranker_candidates.production(con)
    print(f"ranker {candidate.ranker} proposed: ranker_candidate_sensor starts a {candidate.design} test against the "
          f"production ranker {incumbent} ({candidate.allocation_percent:g}% of users) once no other candidate is "
          "under test, and promotes or rejects it on the verdict")


def cmd_ranker_list(args: argparse.Namespace) -> None:
    from trending_assets.lib import ranker_candidates, warehouse

    home = environment.configure()
    with warehouse.connect(home.warehouse) as con:
        production, rankers = ranker_candidates.production(con), ranker_candidates.all_rankers(con)
    print(f"production ranker: {production}")
    for r in rankers:
        print(f"  {r.ranker}: {r.status} ({r.design}{', ' + r.experiment_id if r.experiment_id else ''})"
              f"{': ' + r.verdict if r.verdict else ''}")


def _login() -> str:
    import getpass

    return getpass.getuser()


def _add_stop(subparsers, help_text: str, func: Callable[[argparse.Namespace], None]) -> None:
    """The `stop ID --reason ...` subcommand every experiment kind has (handled by ``_stop``)."""
    stop = subparsers.add_parser("stop", help=help_text)
    stop.add_argument("id")
    stop.add_argument("--reason", required=True)
    stop.set_defaults(func=func)


def add_parsers(sub, positive: Callable[[str], int]) -> None:
    """The experiment subcommands, added to the `trending` parser's subparsers."""
    ab = sub.add_parser("ab", help="A/B tests of a serving surface, e.g. vibe-tag prompt variants")
    ab_sub = ab.add_subparsers(dest="ab_command", required=True)
    ab_start = ab_sub.add_parser("start", help="start a test; the plan gains it at once")
    ab_start.add_argument("--id", default="vibe-tags", help="experiment id (unique)")
    ab_start.add_argument("--surface", choices=("vibe_tags",), default="vibe_tags")
    ab_start.add_argument("--variants", default="genre_moods_v2,moods_v1",
                          help="generators, control first: moods_v1, genre_moods_v2, embedding_v1, llm:<prompt>")
    ab_start.add_argument("--mde", type=float, default=0.01, help="absolute click-through effect to size it for")
    ab_start.set_defaults(func=cmd_ab_start)
    _add_stop(ab_sub, "stop a running test without a verdict", cmd_ab_stop)

    interleave = sub.add_parser("interleave", help="interleaving tests of /trending rankers")
    interleave_sub = interleave.add_subparsers(dest="interleave_command", required=True)
    il_start = interleave_sub.add_parser("start", help="start a team-draft test; the plan gains it at once")
    il_start.add_argument("--id", default="ranker-test", help="experiment id (unique)")
    il_start.add_argument("--rankers", default="popularity,genre_taste", help="two rankers, the incumbent first")
    il_start.add_argument("--design", choices=("team_draft", "balanced"), default="team_draft",
                          help="how the two rankings are merged and clicks credited")
    il_start.add_argument("--min-users", type=positive, default=100,
                          help="users with a preference before a verdict")
    il_start.set_defaults(func=cmd_interleave_start)
    _add_stop(interleave_sub, "stop a running test without a verdict", cmd_interleave_stop)

    bandit = sub.add_parser("bandit", help="bandits over /trending rankers, with off-policy evaluation")
    bandit_sub = bandit.add_subparsers(dest="bandit_command", required=True)
    b_start = bandit_sub.add_parser("start", help="start a bandit; the plan gains it at once")
    b_start.add_argument("--id", default="ranker-bandit", help="experiment id (unique)")
    b_start.add_argument("--rankers", default="popularity,genre_taste", help="the arms, the incumbent first")
    b_start.add_argument("--policy", choices=tuple(POLICY_NAMES), default="thompson",
                         help="how traffic moves between the rankers (default thompson). LinUCB is library-only: it "
                              "needs each user's features when serving, and the plan gives every user one set of "
                              "weights")
    b_start.add_argument("--epsilon", type=float, default=None,
                         help="epsilon_greedy only: share of traffic explored uniformly (default 0.1)")
    b_start.add_argument("--floor", type=float, default=0.1, help="share of traffic spread evenly over the arms")
    b_start.add_argument("--warmup", type=positive, default=200, help="requests per arm before traffic moves")
    b_start.set_defaults(func=cmd_bandit_start)
    _add_stop(bandit_sub, "stop a running bandit", cmd_bandit_stop)

    ranker = sub.add_parser("ranker", help="/trending ranker candidates, tested and promoted by the automation")
    ranker_sub = ranker.add_subparsers(dest="ranker_command", required=True)
    propose = ranker_sub.add_parser("propose", help="queue a candidate; ranker_candidate_sensor tests it against "
                                                    "the production ranker")
    propose.add_argument("ranker", help="a ranker name, e.g. genre_taste")
    propose.add_argument("--reason", required=True, help="why it should be better")
    propose.add_argument("--design", choices=("interleaving", "bandit"), default="interleaving")
    propose.add_argument("--allocation", type=float, default=50.0, help="percent of users in its test")
    propose.add_argument("--by", help="who proposes it (default: your login name)")
    propose.set_defaults(func=cmd_ranker_propose)
    listing = ranker_sub.add_parser("list", help="the production ranker and every candidate's status")
    listing.set_defaults(func=cmd_ranker_list)

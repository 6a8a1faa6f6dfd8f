"""Experiments as text for the terminal (``trending experiments``, the demo's closing report): each rollout's
phase history, its latest verdict with the statistics behind it, and the champion's alias history."""

from __future__ import annotations

import json

import duckdb

from trending_assets.lib.warehouse import table_exists


def render(con: duckdb.DuckDBPyConnection) -> str:
    if not table_exists(con, "experiments", "rollouts"):
        return "no rollouts yet (a staged challenger starts one)"
    lines = []
    for (experiment_id, champion, challenger, phase, percent, planned, days, reason) in con.execute(
            "SELECT experiment_id, champion_version, challenger_version, phase, percent, planned_users_per_arm, "
            "expected_days, decision_reason FROM experiments.rollouts ORDER BY created_at").fetchall():
        lines.append(f"{experiment_id}: {challenger} vs champion {champion} -> {phase}"
                     + (f" at {percent:g}%" if phase in ("canary", "ab") else ""))
        if planned:
            lines.append(f"  power analysis: {planned} users per arm (~{days:g} days) for the planned MDE")
        for moved_at, from_phase, to_phase, to_percent, actor, why in con.execute(
                "SELECT moved_at, from_phase, to_phase, to_percent, actor, reason FROM experiments.phase_history "
                "WHERE experiment_id = ? ORDER BY id", [experiment_id]).fetchall():
            step = f"{to_phase} {to_percent:g}%" if to_phase in ("canary", "ab") else to_phase
            lines.append(f"  {moved_at:%H:%M:%S} {from_phase or '-':>17} -> {step:<20} {actor}: {why[:150]}")
        lines += _latest_results(con, experiment_id)
        if reason:
            lines.append(f"  verdict: {reason[:300]}")
    if table_exists(con, "experiments", "ab_tests"):
        for experiment_id, surface, variants, status, planned, verdict in con.execute(
                "SELECT experiment_id, surface, variants, status, planned_users_per_arm, verdict "
                "FROM experiments.ab_tests ORDER BY created_at").fetchall():
            names = ", ".join(v["name"] for v in json.loads(variants))
            lines.append(f"{experiment_id}: A/B test of {surface} ({names}; control first) -> {status}; power "
                         f"analysis {planned} users per arm")
            lines += _latest_results(con, experiment_id)
            if verdict:
                lines.append(f"  verdict: {verdict[:300]}")
    if table_exists(con, "experiments", "ranking_tests"):
        for experiment_id, ranker_a, ranker_b, status, verdict in con.execute(
                "SELECT experiment_id, ranker_a, ranker_b, status, verdict FROM experiments.ranking_tests "
                "ORDER BY created_at").fetchall():
            lines.append(f"{experiment_id}: team-draft interleaving of {ranker_a} (A) and {ranker_b} (B) -> {status}")
            for users, wins_a, wins_b, ties, p_value, needed in con.execute(
                    "SELECT users, wins_a, wins_b, ties, p_value, required_users FROM experiments.interleaving_results "
                    "WHERE experiment_id = ? ORDER BY analysed_at DESC LIMIT 1", [experiment_id]).fetchall():
                lines.append(f"  latest analysis: {users} users, {wins_a} prefer A, {wins_b} prefer B, {ties} ties; "
                             f"sign test p={p_value:.3g}; 80% power at this gap needs {needed} users")
            if verdict:
                lines.append(f"  verdict: {verdict[:300]}")
    if table_exists(con, "experiments", "bandit_results"):
        columns = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                             "'experiments' AND table_name = 'ranking_bandits'").fetchall()}
        policy = "policy" if "policy" in columns else "'thompson'"  # a warehouse from before the policy choice
        allocation = "allocation_p" if "allocation_p" in columns else "NULL"
        for experiment_id, status, verdict, name, allocation_p in con.execute(
                f"SELECT experiment_id, status, verdict, {policy}, {allocation} FROM experiments.ranking_bandits "
                "ORDER BY created_at").fetchall():
            audit = f"; allocation audit p={allocation_p:.3g}" if allocation_p is not None else ""
            lines.append(f"{experiment_id}: {name} bandit over rankers -> {status}{audit}")
            for arm, requests, rate, weight, dr, low, high, logged, passed in con.execute(
                    "SELECT arm, requests, click_rate, next_weight, dr, dr_low, dr_high, logged_value, gate_passed "
                    "FROM experiments.bandit_results WHERE experiment_id = ? AND analysed_at = (SELECT max(analysed_at) "
                    "FROM experiments.bandit_results WHERE experiment_id = ?) ORDER BY arm",
                    [experiment_id, experiment_id]).fetchall():
                lines.append(f"  {arm}: {requests} requests, click share {rate or 0:.4f}, weight {weight:.0%}; always "
                             f"{arm}: DR {dr:.4f} [{low:.4f}, {high:.4f}] vs logged {logged:.4f}"
                             + (" (OPE gate passed)" if passed else ""))
            if verdict:
                lines.append(f"  verdict: {verdict[:300]}")
    lines += _rankers_and_layer(con)
    lines.append("\nchampion alias history (ml.alias_history):")
    for seq, from_version, to_version, moved_at, actor, why in con.execute(
            "SELECT seq, from_version, to_version, moved_at, actor, reason FROM ml.alias_history "
            "WHERE alias = 'champion' ORDER BY seq").fetchall():
        lines.append(f"  #{seq} {moved_at:%H:%M:%S} {from_version or '-'} -> {to_version or '-'}  {actor}: "
                     f"{why[:140]}")
    return "\n".join(lines)


def _rankers_and_layer(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The /trending ranker candidates and the genre-threshold policy layer's newest analysis."""
    from trending_assets.lib import policy_layer_store, ranker_candidates

    lines = []
    rankers = ranker_candidates.all_rankers(con)
    if rankers:
        lines.append(f"/trending production ranker: {ranker_candidates.production(con)}")
        lines += [f"  {r.ranker}: {r.status}" + (f": {r.verdict[:250]}" if r.verdict else "") for r in rankers]
    layer = policy_layer_store.get(con)
    if layer is not None:
        lines.append(f"{layer.layer_id}: policy layer over {layer.model_version} -> {layer.status}")
        lines += [f"  {line}" for line in policy_layer_store.history_lines(con, layer)]
    return lines


def _latest_results(con: duckdb.DuckDBPyConnection, experiment_id: str) -> list[str]:
    rows = con.execute(
        """SELECT phase, percent, days, metric, role, method, control_n, treatment_n, control_mean, treatment_mean,
                  diff, ci_low, ci_high, p_value, p_adjusted, sequential_p, improved, harmed
           FROM experiments.results
           WHERE experiment_id = ? AND analysed_at = (SELECT max(analysed_at) FROM experiments.results
                                                       WHERE experiment_id = ?)
           ORDER BY role, metric""", [experiment_id, experiment_id]).fetchall()
    if not rows:
        return []
    phase, percent, days = rows[0][:3]
    out = [f"  latest analysis ({phase} {percent:g}%, {days} day(s)):",
           f"    {'metric':<22} {'role':<9} {'method':<16} {'n c/t':>11} {'control':>8} {'treat':>8} "
           f"{'diff [95% CI]':>28} {'p':>7} {'p_holm':>7} {'p_seq':>7}"]
    for (_, _, _, metric, role, method, n_c, n_t, mean_c, mean_t, diff, low, high, p, p_adj, p_seq, improved,
         harmed) in rows:
        flag = " improved" if improved else " HARMED" if harmed else ""
        out.append(f"    {metric:<22} {role:<9} {method:<16} {f'{n_c}/{n_t}':>11} {_f(mean_c):>8} {_f(mean_t):>8} "
                   f"{_f(diff, '+.4f'):>9} [{_f(low, '+.4f')}, {_f(high, '+.4f')}] {_f(p, '.4f'):>7} "
                   f"{_f(p_adj, '.4f'):>7} {_f(p_seq, '.4f'):>7}{flag}")
    srm = con.execute("SELECT control_users, treatment_users, p_value, ok FROM experiments.srm WHERE experiment_id = ? "
                      "ORDER BY analysed_at DESC LIMIT 1", [experiment_id]).fetchall()
    if srm:
        c, t, p, ok = srm[0]
        out.append(f"    SRM: {c} control / {t} challenger users, chi-squared p={p:.3g} ({'ok' if ok else 'MISMATCH'})")
    return out


def _f(value, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)

"""Evaluation, offline gates and staging, per model family.

``ml/<family>_evaluation`` scores the newest candidate on the static test set and the backtest slice beside its
reference (the champion, or the prevalence baseline before there is one) and writes ``ml.evaluations`` and
``ml.model_comparisons``, with a markdown report and a per-genre F1 plot. Three blocking checks judge it
(``artifact_loads_and_predicts``, ``non_inferior_macro_f1``, ``no_genre_collapse``) and record their verdicts in
``ml.gate_results``; ``ml/<family>_staging`` runs only after all three pass: it moves the candidate to
``staging`` and makes it the ``challenger``, or, when there is no champion yet, the first ``champion``.
"""

import dataclasses
from collections.abc import Iterator

import dagster as dg
import polars as pl

from trending_assets.defs.automation.execution import HEAVY
from trending_assets.defs.models.config import GateConfig
from trending_assets.defs.models.resources import WandbResource
from trending_assets.defs.models.training import candidate_key
from trending_assets.defs.models.upstream import latest_metadata
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import evaluation_store, gate_store, gates, genre_model, registry
from trending_assets.lib.evaluation import BASELINE, Comparison
from trending_assets.lib.evaluation_report import evaluation_report
from trending_assets.lib.features import label_matrix
from trending_assets.lib.genre_model import TRANSFORMER, XGBOOST
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.offline_evaluation import BACKTEST, STATIC_TEST, Dataset, evaluate_candidate
from trending_assets.lib.training import CHAMPION
from trending_assets.lib.training import champion as current_champion

STATIC_TEST_SET = dg.AssetKey(["ml", "static_test_set"])
BACKTEST_SLICE = dg.AssetKey(["ml", "backtest_slice"])
CHALLENGER = "challenger"
GATES = ("artifact_loads_and_predicts", "non_inferior_macro_f1", "no_genre_collapse")
ARTIFACT_PROBE_ROWS = 32


def evaluation_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["ml", f"{family}_evaluation"])


def _datasets(context, static: dict) -> list[Dataset]:
    """The evaluation datasets: the static test set (``static``: its latest metadata) once frozen, the backtest."""
    found = []
    if static.get("frozen"):
        found.append(Dataset(STATIC_TEST, static["window_id"], pl.read_parquet(static["path"])))
    else:
        context.log.warning("the static test set is not frozen yet; the gates will hold every candidate back")
    backtest = latest_metadata(context, BACKTEST_SLICE)
    found.append(Dataset(BACKTEST, backtest["window_id"], pl.read_parquet(backtest["path"])))
    return found


def _load(version: registry.ModelVersion):
    return genre_model.load_version(version)


def build_evaluation(family: str) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition, dg.AssetsDefinition]:
    """The evaluation asset, its gates and the staging asset of one model family."""
    key = evaluation_key(family)

    @dg.asset(
        key=key, deps=[candidate_key(family), STATIC_TEST_SET, BACKTEST_SLICE], group_name="evaluation",
        kinds={"duckdb", "polars"}, pool=WAREHOUSE_POOL, op_tags=HEAVY,
        description=f"The newest {family} candidate scored on the static test set and the backtest slice beside "
        "the champion (or the prevalence baseline), with paired bootstrap CIs, slices, and a per-genre F1 plot.",
    )
    def evaluation_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         wandb: WandbResource) -> dg.MaterializeResult:
        version_id = latest_metadata(context, candidate_key(family))["version_id"]
        static_metadata = latest_metadata(context, STATIC_TEST_SET)
        datasets = _datasets(context, static_metadata)
        with warehouse.connect() as con:
            version = registry.get(con, version_id)
            champion = current_champion(con)
            window_path = con.execute("SELECT path FROM ml.training_windows WHERE window_id = ? AND kind = 'training'",
                                      [version.window_id]).fetchall()[0][0]
            parent = registry.get(con, version.parent_version) if version.parent_version else None
        reference = champion if champion is not None and champion.version_id != version_id else None
        candidate = _load(version)
        result = evaluate_candidate(
            version_id, candidate, datasets,
            reference.version_id if reference else None, _load(reference) if reference else None,
            label_matrix(pl.read_parquet(window_path), candidate.genres),
            parent=(parent.version_id, _load(parent)) if parent else None,
        )
        now = utc_now()
        with warehouse.connect() as con:
            for model_version, rows in result.rows.items():
                if model_version == BASELINE:
                    continue
                for data in datasets:
                    evaluation_store.write_evaluation(con, rows.filter(pl.col("dataset") == data.name),
                                                      data.window_id, now)
            evaluation_store.write_comparisons(con, result.comparisons, now)
            registry.add_metrics(con, version_id, result.headline)
        report = evaluation_report(result, warehouse.home.reports / version_id)
        with wandb.run(f"{version_id}-evaluation", {"version_id": version_id, "reference": result.reference},
                       log=context.log, job_type="evaluate", group=version_id) as run:
            run.log_metrics(result.headline)
            rows = result.rows[version_id]
            run.log_table("evaluation", rows.columns, rows.rows())
        static = next((d for d in datasets if d.name == STATIC_TEST), None)
        comparison = result.comparison(result.reference, STATIC_TEST)
        gate_inputs = {
            "version_id": version_id, "reference": result.reference,
            "static_test_path": static_metadata.get("path") if static else None,
            "static_test_rows": static.frame.height if static else 0,
            "comparison": dataclasses.asdict(comparison) if comparison else None,
            "candidate_f1": result.per_genre_f1(version_id, STATIC_TEST) if static else {},
            "reference_f1": result.per_genre_f1(result.reference, STATIC_TEST) if static else {},
            "support": result.support(STATIC_TEST) if static else {},
        }
        return dg.MaterializeResult(
            metadata={
                "version_id": version_id,
                "reference": result.reference,
                **{k: float(v) for k, v in result.headline.items() if k.endswith("_f1")},
                "report": dg.MetadataValue.md(report.markdown),
                "plot": dg.MetadataValue.path(str(report.plot_path)),
                "gate_inputs": dg.MetadataValue.json(gate_inputs),
            },
            data_version=dg.DataVersion(f"{version_id}:{'/'.join(d.window_id for d in datasets)}"),
        )

    @dg.multi_asset_check(
        name=f"{family}_gates", pool=WAREHOUSE_POOL,
        specs=[dg.AssetCheckSpec(gate, asset=key, blocking=True) for gate in GATES],
        description="Offline promotion gates; a failure blocks staging.",
    )
    def gates_check(context: dg.AssetCheckExecutionContext, config: GateConfig, warehouse: WarehouseResource):
        inputs = latest_metadata(context, key)["gate_inputs"]
        version_id, reference = inputs["version_id"], inputs["reference"]
        results = _judge(inputs, config, warehouse)
        with warehouse.connect() as con:
            gate_store.record(con, [gate_store.Verdict(version_id, r.name, r.passed, r.summary, reference, r.metadata,
                                                       utc_now()) for r in results])
        for result in results:
            context.log.info(f"{version_id} {result.name}: {'passed' if result.passed else 'FAILED'}: {result.summary}")
            yield dg.AssetCheckResult(
                asset_key=key, check_name=result.name, passed=result.passed,
                severity=dg.AssetCheckSeverity.ERROR, description=result.summary,
                metadata={"version_id": version_id, "reference": reference, **result.metadata},
            )

    @dg.asset(
        key=["ml", f"{family}_staging"], deps=[key], group_name="models", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
        output_required=False,
        description=f"Moves a {family} candidate that passed every offline gate to staging: it becomes the "
        "challenger, or the first champion when there is none (a compare-and-set on the alias).",
    )
    def staging_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      wandb: WandbResource) -> Iterator[dg.MaterializeResult]:
        version_id = latest_metadata(context, key)["version_id"]
        actor = f"asset:{family}_staging"
        with warehouse.connect() as con:  # one connection: no other process can move an alias in between
            verdicts = gate_store.latest(con, version_id)
            missing = set(GATES) - {v.gate for v in verdicts}
            failed = [v for v in verdicts if not v.passed]
            if missing or failed:
                why = "; ".join([f"{v.gate}: {v.summary}" for v in failed] + [f"{g}: not judged" for g in missing])
                raise dg.Failure(f"{version_id} cannot go to staging: {why}. Train a better candidate, or re-run "
                                 f"ml/{family}_evaluation with its gates.")
            held_back = _held_back(con, version_id, verdicts)
            if held_back:
                context.log.warning(held_back)
                context.log_event(dg.AssetObservation(asset_key=context.asset_key,
                                                      metadata={"version_id": version_id, "held_back": held_back}))
                return  # stays a candidate; no materialization, so nothing is staged
            reason = "passed offline gates: " + "; ".join(v.summary for v in verdicts)
            version = registry.get(con, version_id)
            if version.stage == "candidate":
                version = registry.set_stage(con, version_id, "staging", actor, reason)
            alias = _claim_alias(con, version_id, actor, reason)
            if alias == CHAMPION and version.stage == "staging":
                version = registry.set_stage(con, version_id, "production", actor,
                                             "first champion: no model was in production")
            aliases = registry.list_aliases(con)
            history = registry.alias_history(con, alias)
        context.log.info(f"{version_id} is now {version.stage}, alias {alias}")
        with wandb.run(f"{version_id}-{alias}", {"version_id": version_id}, log=context.log, job_type="stage",
                       group=version_id) as run:
            run.log_model(registry.load_artifact(version), f"{family}-genre-model",
                          aliases=[alias, version.stage, version_id], metadata={"registry_version": version_id})
        yield dg.MaterializeResult(metadata={
            "version_id": version_id, "stage": version.stage, "alias": alias,
            "aliases": dg.MetadataValue.json(aliases),
            "alias_history": dg.MetadataValue.md(_history_table(history)),
            "reason": reason,
        })

    return evaluation_asset, gates_check, staging_asset


def _judge(inputs: dict, config: GateConfig, warehouse: WarehouseResource) -> list[gates.GateResult]:
    version_id = inputs["version_id"]
    if not inputs["static_test_rows"]:
        why = "no frozen static test set to judge on; wait for ml/static_test_set to freeze"
        return [gates.GateResult(gate, False, why, {}) for gate in GATES]

    def probe():
        with warehouse.connect() as con:
            version = registry.get(con, version_id)
        frame = pl.read_parquet(inputs["static_test_path"]).head(ARTIFACT_PROBE_ROWS)
        return _load(version).predict_proba(frame)

    n_probe = min(ARTIFACT_PROBE_ROWS, inputs["static_test_rows"])
    artifact = gates.artifact_gate(probe, n_probe, len(inputs["support"]))
    comparison = Comparison(**inputs["comparison"])
    tolerance = 0.0 if inputs["reference"] == BASELINE else config.tolerance  # a first model must beat the baseline
    return [
        artifact,
        gates.non_inferiority_gate(comparison, tolerance),
        gates.genre_collapse_gate(inputs["candidate_f1"], inputs["reference_f1"], inputs["support"],
                                  config.min_support, config.max_genre_drop),
    ]


def _held_back(con, version_id: str, verdicts: list[gate_store.Verdict]) -> str | None:
    """Why a candidate that passed its gates still must not be staged, or None. Either the verdict compared it
    with a reference that is not the champion any more (two candidates judged against the baseline at once; the
    other became champion), or there is no champion yet and a stronger first-round candidate should be it."""
    champion = current_champion(con)
    if champion is not None and champion.version_id == version_id:
        return None
    expected = champion.version_id if champion is not None else BASELINE
    judged_against = {v.reference for v in verdicts}
    if judged_against == {expected}:
        if champion is None and (rival := gate_store.stronger_first_candidate(con, version_id, BASELINE)):
            return (f"{version_id} passed its gates, but so did {rival[0]}, with a higher static-test macro F1 "
                    f"({rival[1]:.3f} vs {rival[2]:.3f}): it becomes the first champion; {version_id} stays a "
                    "candidate")
        return None
    family = version_id.split("-v")[0]
    return (f"{version_id} passed its gates against {', '.join(sorted(map(str, judged_against)))}, but the champion "
            f"is now {expected}; it stays a candidate; materialize ml/{family}_evaluation to judge it against "
            f"{expected}")


def _claim_alias(con, version_id: str, actor: str, reason: str) -> str:
    """Champion if nobody holds it (compare-and-set), else challenger; the alias it now holds."""
    champion = current_champion(con)
    if champion is not None and champion.version_id == version_id:
        return CHAMPION
    if champion is None:
        try:
            registry.set_alias(con, CHAMPION, version_id, actor, f"first champion; {reason}", expected=None)
            return CHAMPION
        except registry.AliasConflictError:
            pass  # another family's candidate became the first champion a moment ago
    registry.set_alias(con, CHALLENGER, version_id, actor, reason)
    return CHALLENGER


def _history_table(history: list[registry.AliasMove]) -> str:
    lines = ["| seq | from | to | when | actor | reason |", "|---|---|---|---|---|---|"]
    lines += [f"| {m.seq} | {m.from_version or '—'} | {m.to_version or '—'} | {m.moved_at:%Y-%m-%d %H:%M} | "
              f"{m.actor} | {m.reason[:120]} |" for m in history[-10:]]
    return "\n".join(lines)


xgboost_evaluation, xgboost_gates, xgboost_staging = build_evaluation(XGBOOST)
transformer_evaluation, transformer_gates, transformer_staging = build_evaluation(TRANSFORMER)

"""``serving/genre_thresholds``: the genre-threshold policy layer's state, learned from labelled logs after every
feedback update and published for the API. Reset it from the launchpad (config ``reset: true``) or with
``trending policy-layer reset``."""

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import experiment_store, policy_layer_learning, policy_layer_store, registry
from trending_assets.lib.reports import markdown_table

KEY = dg.AssetKey(["serving", "genre_thresholds"])


class GenreThresholdsConfig(dg.Config):
    reset: bool = False  # forget what the layer learned: only logs from now on count
    reason: str = "reset from the Dagster UI"


@dg.asset(
    key=KEY, deps=[dg.AssetKey(["marts", "fct_feedback_events"]), dg.AssetKey(["marts", "dim_movies"])],
    group_name="serving", kinds={"duckdb", "json"}, pool=WAREHOUSE_POOL, automation_condition=on_upstream_update(),
    description="The policy layer over the champion's genre probabilities: per genre, a Thompson-sampling bandit "
    "over tag thresholds, rebuilt from the logged draws (with their propensities) and the movies' labels since the "
    "layer's start or last reset, and the distribution users draw from next, published to "
    "serving/genre_thresholds.json. Per genre, the learned threshold with the off-policy (doubly robust) accuracy "
    "of always using it against the model's own threshold. History in experiments.policy_layer_history. Reset: "
    "materialize with config reset=true.",
)
def genre_thresholds(context: dg.AssetExecutionContext, config: GenreThresholdsConfig,
                     warehouse: WarehouseResource) -> dg.MaterializeResult:
    path = warehouse.home.genre_thresholds
    with warehouse.connect() as con:
        policy_layer_store.ensure_schema(con)
        layer = policy_layer_store.get(con)
        if layer is None or layer.status != "running":
            if layer is not None:  # stopped: the API must stop applying it
                policy_layer_store.publish(layer, path)
            return dg.MaterializeResult(metadata={"status": "no running policy layer; start one with "
                                                            "`trending policy-layer start`"})
        events = []
        if config.reset:
            layer = policy_layer_store.reset(con, experiment_store.watermark(con) or layer.epoch, config.reason)
            events.append(f"reset: {config.reason}")
        champion = registry.resolve_alias(con, "champion")
        if champion is not None and champion.version_id != layer.model_version:
            version, genres, baseline = policy_layer_store.champion_genres(con)
            layer = policy_layer_store.rebase(con, version, genres, baseline,
                                              experiment_store.watermark(con) or layer.epoch)
            events.append(f"rebased on the new champion {version}")
        result = policy_layer_learning.analyse(layer, policy_layer_learning.decisions(con, layer),
                                               policy_layer_store.previous_thresholds(con, layer))
        policy_layer_store.save(con, layer, result)
    policy_layer_store.publish(layer, path, result["state"])
    for event in events:
        context.log.warning(f"{layer.layer_id}: {event}")
    context.log.info(result["line"])
    table = pl.DataFrame([{
        "genre": r["genre"], "threshold": r["threshold"], "previous": r["previous"],
        "share now": r["distribution"][r["threshold"]], "requests": r["decisions"],
        "logged accuracy": r["logged_accuracy"], "learned DR": r["learned_dr"], "low": r["learned_low"],
        "high": r["learned_high"], f"DR at {layer.baseline:g}": r["model_dr"], "proven": r["gate_passed"],
    } for r in result["rows"]])
    return dg.MaterializeResult(metadata={
        "model_version": layer.model_version, "epoch": layer.epoch.isoformat(), "summary": result["line"],
        "changed": ", ".join(f"{r['genre']} {r['previous']:g} -> {r['threshold']:g}" for r in result["changed"])
        or "none", "events": "; ".join(events) or "none",
        "thresholds": dg.MetadataValue.md(markdown_table(table, "{:.3f}")),
        "state": dg.MetadataValue.json(result["state"]), "path": dg.MetadataValue.path(str(path)),
    })

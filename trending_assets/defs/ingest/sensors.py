"""landing_sensor: new or changed landing files -> runs for exactly the day partitions they touch."""

import hashlib
import json

import dagster as dg

from trending_assets.defs.ingest.assets import landing_specs
from trending_assets.defs.ingest.partitions import daily_partitions
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib.contracts import CONTRACTS
from trending_assets.lib.landing_watch import detect_changes

RAW_KEYS = {c.entity: dg.AssetKey(["raw", c.table]) for c in CONTRACTS.values()}


@dg.sensor(
    name="landing_sensor",
    description="Watches $TRENDING_HOME/landing; requests one ingest run per touched day with only the raw "
    "tables whose files changed. The cursor holds path -> checksum, so unchanged files never load twice.",
    asset_selection=list(RAW_KEYS.values()),
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    previous = json.loads(context.cursor) if context.cursor else {}
    changes = detect_changes(warehouse.home.landing, previous.get("files", {}))
    known_refused = set(previous.get("refused", []))
    for refused in changes.refused:
        if str(refused.path) not in known_refused:
            context.log.warning(f"refused landing file {refused.path}: {refused.reason}")
    valid_keys = set(daily_partitions.get_partition_keys())
    run_requests = []
    for day, entities in sorted(changes.partitions.items()):
        key = day.isoformat()
        if key not in valid_keys:
            context.log.warning(f"landing rows for {key} fall outside the daily partitions; not requested")
            continue
        files = sorted(f for f in changes.changed_files)
        run_key = hashlib.sha256(json.dumps([key, sorted(entities), files]).encode()).hexdigest()[:24]
        run_requests.append(
            dg.RunRequest(
                run_key=run_key,
                partition_key=key,
                asset_selection=[RAW_KEYS[e] for e in sorted(entities)],
                tags={"trending/trigger": "landing_sensor", "trending/entities": ",".join(sorted(entities))},
            )
        )
    if run_requests:
        context.log.info(
            f"{len(changes.changed_files)} changed file(s) touch {len(run_requests)} partition(s): "
            + ", ".join(r.partition_key for r in run_requests)
        )
    observations = [
        dg.AssetObservation(spec.key, metadata={"files": changes.files_seen.get(spec.key.path[-1], 0)})
        for spec in landing_specs
    ] if changes.changed_files else []
    cursor = {"files": changes.state, "refused": sorted(str(r.path) for r in changes.refused)}
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(cursor), asset_events=observations)

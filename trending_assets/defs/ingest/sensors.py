"""landing_sensor: new or changed landing files -> runs for exactly the day partitions they touch."""

import hashlib
import json

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from trending_assets.defs.ingest.assets import landing_specs
from trending_assets.defs.ingest.partitions import daily_partitions
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib.contracts import CONTRACTS
from trending_assets.lib.landing_watch import contiguous_ranges, detect_changes

RAW_KEYS = {c.entity: dg.AssetKey(["raw", c.table]) for c in CONTRACTS.values()}


@dg.sensor(
    name="landing_sensor",
    description="Watches $TRENDING_HOME/landing; requests one ingest run per range of consecutive touched days, "
    "with only the raw tables whose files changed. The cursor holds path -> checksum, so unchanged files never load twice.",
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
    early = sorted(day for day in changes.partitions if day.isoformat() not in valid_keys)
    if early:
        # e.g. a scrape stamped minutes after UTC midnight, before that day's partition exists: forget those files
        # in the cursor so a later tick, once the partition exists, picks them up again.
        context.log.info(f"landing rows for {', '.join(map(str, early))} have no partition yet; will retry")
        for name, entry in list(changes.state.items()):
            if set(entry["partitions"]) & {d.isoformat() for d in early}:
                del changes.state[name]
    ready = {day: entities for day, entities in changes.partitions.items() if day not in early}
    run_requests = []
    for first, last, entities in contiguous_ranges(ready):
        start, end = first.isoformat(), last.isoformat()
        run_key = hashlib.sha256(json.dumps([start, end, sorted(entities), changes.changed_files]).encode()).hexdigest()
        run_requests.append(
            dg.RunRequest(
                run_key=run_key[:24],
                asset_selection=[RAW_KEYS[e] for e in sorted(entities)],
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: start,
                    ASSET_PARTITION_RANGE_END_TAG: end,
                    "trending/trigger": "landing_sensor",
                    "trending/entities": ",".join(sorted(entities)),
                },
            )
        )
    if run_requests:
        context.log.info(
            f"{len(changes.changed_files)} changed file(s) touch day(s) "
            + ", ".join(f"{r.tags[ASSET_PARTITION_RANGE_START_TAG]}..{r.tags[ASSET_PARTITION_RANGE_END_TAG]}" for r in run_requests)
        )
    observations = [
        dg.AssetObservation(spec.key, metadata={"files": changes.files_seen.get(spec.key.path[-1], 0)})
        for spec in landing_specs
    ] if changes.changed_files else []
    cursor = {"files": changes.state, "refused": sorted(str(r.path) for r in changes.refused)}
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(cursor), asset_events=observations)

"""Named jobs: what `trending materialize` runs and what a person launches from the UI."""

import dagster as dg

from trending_assets.defs.ingest.partitions import daily_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    partitions_def=daily_partitions,
    description="Load a range of days of landed files into the raw tables (what `trending materialize` and a "
    "person in the UI launch; landing_sensor requests the same raw assets directly).",
)

build_job = dg.define_asset_job(
    "build_job",
    selection=dg.AssetSelection.groups("staging", "marts", "windows", "warehouse", "serving"),
    description="dbt build (staging, marts, tests), the curated windows, the analysts' snapshot, and what the serving "
    "API reads (catalog, deployment plan).",
)

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.groups("models", "evaluation"),
    description="Train both model families on the current window (hybrid policy), evaluate them, judge them with "
    "the offline gates and stage those that pass (what `trending materialize` runs after build_job, before "
    "republishing the snapshot).",
)

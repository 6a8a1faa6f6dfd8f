"""Process environment for every entry point: one TRENDING_HOME, an absolute DAGSTER_HOME, W&B offline."""

from __future__ import annotations

import os

from trending_assets.lib.home import TrendingHome

# Dagster instance settings. Pools with run granularity queue runs that would write DuckDB at the same time
# (DuckDB allows one writing process); telemetry stays off because the machine has no network; freshness
# policies (in preview in 1.13) are evaluated so a stale window or report shows in the UI.
INSTANCE_YAML = """\
telemetry:
  enabled: false
freshness:
  enabled: true
nux:
  enabled: false
concurrency:
  pools:
    default_limit: 1
    granularity: run
  runs:
    max_concurrent_runs: 4
"""


def configure(home: TrendingHome | None = None) -> TrendingHome:
    """Create the home's folders, write the instance's dagster.yaml if missing, and export the variables."""
    home = (home or TrendingHome.from_env()).ensure()
    instance_yaml = home.dagster_home / "dagster.yaml"
    fresh = not instance_yaml.exists()
    if fresh:
        instance_yaml.write_text(INSTANCE_YAML)
    os.environ["TRENDING_HOME"] = str(home.root)
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    os.environ["TRENDING_WAREHOUSE"] = str(home.warehouse)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_DIR", str(home.wandb))
    os.environ.setdefault("WANDB_SILENT", "true")  # offline runs would print "wandb sync ..." hints per run
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    if fresh:
        _create_instance_storage()
    if not home.warehouse.exists():
        _create_raw_schema(home)
    return home


def _create_raw_schema(home: TrendingHome) -> None:
    """Empty raw tables from the start, so dbt's sources exist before the first file lands."""
    from trending_assets.lib import warehouse
    from trending_assets.lib.ingest import ensure_raw_schema

    with warehouse.connect(home.warehouse) as con:
        ensure_raw_schema(con)


def _create_instance_storage() -> None:
    """Create the instance's SQLite storage and the warehouse pool's limit once, up front.

    A daemon and its code server that both find no storage race to create it, which can leave two alembic
    heads behind and a code location that never loads. And a pool whose limit is only set from `default_limit`
    when its first run is queued lets the runs queued in that same first tick start together, two DuckDB
    writers at once.
    """
    import dagster as dg

    from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL

    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)


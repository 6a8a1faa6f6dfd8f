"""The analysts' tables: dbt staging views and marts over the raw schema."""

import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from trending_assets.defs.dbt.resources import dbt_project
from trending_assets.defs.dbt.translator import TrendingDbtTranslator
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=TrendingDbtTranslator(),
    pool=WAREHOUSE_POOL,
    name="trending_dbt",
)
def trending_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """dbt build (models + tests as asset checks) against the warehouse DuckDB file."""
    # profiles.yml reads the database path from the environment of the dbt process.
    os.environ["TRENDING_WAREHOUSE"] = str(warehouse.home.warehouse)
    yield from dbt.cli(["build"], context=context).stream()

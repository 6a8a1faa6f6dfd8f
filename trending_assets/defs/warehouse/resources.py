"""The warehouse resource: where TRENDING_HOME is and how to open its DuckDB file."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from trending_assets.lib import warehouse
from trending_assets.lib.home import TrendingHome

WAREHOUSE_POOL = "warehouse"  # every step that writes DuckDB takes this pool (limit 1 in dagster.yaml)


class WarehouseResource(dg.ConfigurableResource):
    """The TRENDING_HOME root: its DuckDB warehouse, landing zone and artifact folders."""

    home_dir: str = str(TrendingHome.from_env().root)

    @property
    def home(self) -> TrendingHome:
        return TrendingHome(Path(self.home_dir)).ensure()

    @contextmanager
    def connect(self, wait_s: float = warehouse.LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived writer connection that waits up to ``wait_s`` while another process holds the lock."""
        with warehouse.connect(self.home.warehouse, wait_s=wait_s) as con:
            yield con


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource()})

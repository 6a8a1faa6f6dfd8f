"""Session setup: an isolated TRENDING_HOME and DAGSTER_HOME, and the dbt manifest dagster-dbt needs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Before any trending_assets import: resources read TRENDING_HOME when their module loads.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="trending-test-home-"))
os.environ["TRENDING_HOME"] = str(_SESSION_HOME)
os.environ["DAGSTER_HOME"] = str(_SESSION_HOME / "dagster")
os.environ["TRENDING_WAREHOUSE"] = str(_SESSION_HOME / "warehouse.duckdb")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"
(_SESSION_HOME / "dagster").mkdir(parents=True, exist_ok=True)

REPO = Path(__file__).resolve().parents[1]
DBT_DIR = REPO / "dbt_project"


def _prepare_manifest() -> None:
    manifest = DBT_DIR / "target" / "manifest.json"
    sources = [p for p in DBT_DIR.rglob("*") if p.suffix in {".sql", ".yml", ".csv"} and "target" not in p.parts]
    if manifest.exists() and all(p.stat().st_mtime <= manifest.stat().st_mtime for p in sources):
        return
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run([str(dbt), "parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--quiet"],
                   check=True, cwd=REPO)


_prepare_manifest()


@pytest.fixture()
def home(tmp_path: Path):
    """A fresh TrendingHome for one test."""
    from trending_assets.lib.home import TrendingHome

    return TrendingHome(tmp_path / "home").ensure()


@pytest.fixture()
def warehouse_resource(home):
    from trending_assets.defs.warehouse.resources import WarehouseResource

    return WarehouseResource(home_dir=str(home.root))

"""The dbt project, prepared once (manifest) and run through dagster-dbt."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject

from trending_assets.lib.home import REPO_ROOT

DBT_PROJECT_DIR: Path = REPO_ROOT / "dbt_project"

# The venv's dbt, so the code location works without an activated venv (daemon, IDE, cron).
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)})

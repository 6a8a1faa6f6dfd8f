"""Resources of the models area: W&B tracking (our own wrapper; dagster-wandb breaks with wandb >= 0.30)."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from trending_assets.lib import tracking
from trending_assets.lib.home import TrendingHome


class WandbResource(dg.ConfigurableResource):
    """W&B mirror of training runs: offline by default (under $TRENDING_HOME/wandb), online with WANDB_API_KEY."""

    mode: str = os.environ.get("WANDB_MODE", "offline")
    project: str = "trending-now"
    directory: str = str(TrendingHome.from_env().wandb)

    @contextmanager
    def run(self, name: str, config: Mapping[str, Any], log=None, job_type: str = "train",
            group: str | None = None) -> Iterator[tracking.TrackedRun]:
        """A guarded run; ``log`` (e.g. ``context.log``) receives the warnings when W&B fails; ``group`` (the model
        version) gathers its train, evaluate and stage runs."""
        warn = log.warning if log is not None else tracking.log.warning
        with tracking.tracked_run(self.mode, Path(self.directory), self.project, name, config, job_type=job_type,
                                  warn=warn, group=group) as run:
            yield run


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"wandb": WandbResource()})

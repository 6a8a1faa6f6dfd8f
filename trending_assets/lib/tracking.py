"""Experiment tracking through the wandb SDK, without ever failing the training it tracks.

Our registry (DuckDB + files) is the system of record; W&B mirrors it. Modes: ``offline`` (default: runs are
written under ``$TRENDING_HOME/wandb`` and can be uploaded later with ``wandb sync``), ``online`` (needs
``WANDB_API_KEY``), ``disabled`` (tests). Every W&B error is logged as a warning and the run turns into a no-op:
a tracking outage must never cost a model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODES = ("offline", "online", "disabled")


def resolve_mode(mode: str) -> str:
    """Validate the mode; ``online`` without an API key falls back to ``offline`` (this machine has no network)."""
    if mode not in MODES:
        raise ValueError(f"W&B mode {mode!r} is not one of: {', '.join(MODES)}")
    if mode == "online" and not os.environ.get("WANDB_API_KEY"):
        log.warning("W&B mode 'online' needs WANDB_API_KEY; logging offline instead")
        return "offline"
    return mode


class TrackedRun:
    """A W&B run whose every call is guarded; ``run`` is None when tracking is disabled or broken."""

    def __init__(self, run: Any | None, warn: Callable[[str], None]) -> None:
        self.run = run
        self._warn = warn

    @property
    def active(self) -> bool:
        return self.run is not None

    def _guard(self, what: str, action: Callable[[], None]) -> None:
        if self.run is None:
            return
        try:
            action()
        except Exception as error:  # the SDK raises many types; none may reach training
            self._warn(f"W&B {what} failed ({type(error).__name__}: {error}); tracking off for this run")
            self.run = None

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        self._guard("log", lambda: self.run.log(dict(metrics)))

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        import wandb

        self._guard("table", lambda: self.run.log({key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])}))

    def log_model(self, path: Path, name: str, aliases: Sequence[str], metadata: Mapping[str, Any] | None = None) -> None:
        """Upload a model file or folder as an artifact, its aliases mirroring our registry's."""
        import wandb

        def action() -> None:
            artifact = wandb.Artifact(name, type="model", metadata=dict(metadata or {}))
            artifact.add_dir(str(path)) if path.is_dir() else artifact.add_file(str(path))
            self.run.log_artifact(artifact, aliases=list(aliases))

        self._guard("artifact", action)


@contextmanager
def tracked_run(
    mode: str,
    directory: Path,
    project: str,
    name: str,
    config: Mapping[str, Any],
    job_type: str = "train",
    warn: Callable[[str], None] = log.warning,
    group: str | None = None,
) -> Iterator[TrackedRun]:
    """A guarded W&B run for the ``with`` block; finished (and flushed to disk offline) on exit.

    ``group`` gathers the runs of one model version (train, evaluate, stage) in the W&B UI."""
    mode = resolve_mode(mode)
    run = None
    if mode != "disabled":
        try:
            import wandb

            directory.mkdir(parents=True, exist_ok=True)
            run = wandb.init(mode=mode, dir=str(directory), project=project, name=name, config=dict(config),
                             job_type=job_type, group=group, reinit="finish_previous")
        except Exception as error:
            warn(f"W&B init failed ({type(error).__name__}: {error}); training continues without tracking")
    tracked = TrackedRun(run, warn)
    try:
        yield tracked
    finally:
        tracked._guard("finish", lambda: tracked.run.finish())

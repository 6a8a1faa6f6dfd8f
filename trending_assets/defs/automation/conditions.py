"""Automation conditions shared by the unpartitioned layers (dbt marts, windows, snapshot)."""

import dagster as dg


def on_upstream_update() -> dg.AutomationCondition:
    """Run when any upstream asset (or any of its day partitions) updates, once nothing upstream is running.

    This is ``eager()`` without its "no dependency missing" clause: a mart built from daily partitions would
    otherwise wait forever for days that never had data.
    """
    return dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()).with_label(
        "on_upstream_update"
    )

"""Automation conditions shared by the unpartitioned layers (dbt marts, windows, snapshot)."""

import dagster as dg


def on_upstream_update() -> dg.AutomationCondition:
    """Run after any upstream asset (or any day partition of one) updates, once nothing upstream is running.

    Unlike ``eager()`` it neither waits for every upstream day to exist (a mart over daily partitions would wait
    forever for days that never had data) nor fires on a never-built asset before its sources exist.
    """
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("on_upstream_update")


def on_missing_or_changed() -> dg.AutomationCondition:
    """For reference data with no upstream (dbt seeds): build it when it is missing or its file changed."""
    return (
        (dg.AutomationCondition.missing() & ~dg.AutomationCondition.in_progress())
        | dg.AutomationCondition.code_version_changed().since_last_handled()
    ).with_label("on_missing_or_changed")


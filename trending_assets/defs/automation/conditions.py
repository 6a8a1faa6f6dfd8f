"""Automation conditions shared by the unpartitioned layers (dbt marts, windows, snapshot)."""

import dagster as dg

# Raw day partitions: some days never have data, so "missing" says nothing about them.
DAILY_PARTITIONED = dg.AssetSelection.groups("ingest")


def on_upstream_update(may_be_missing: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Run after any upstream asset (or any day partition of one) updates, once nothing upstream is running and
    every unpartitioned upstream asset exists.

    Unlike ``eager()`` it does not wait for every upstream *day* to exist (a mart over daily partitions would
    wait forever for days that never had data), but it does wait for built upstream tables: otherwise a mart
    could be requested beside one of its staging views while the other view's raw table is still loading.
    ``may_be_missing`` names upstream assets that may never exist and must not hold the asset back (a model's
    staging asset, say, which only materializes once a candidate passes its gates).
    """
    ignored = DAILY_PARTITIONED | may_be_missing if may_be_missing is not None else DAILY_PARTITIONED
    return (
        # reset only by a request, not by the asset's own materialization: an upstream update that lands in the
        # same tick window as a previous build finishing must still trigger the next build
        dg.AutomationCondition.any_deps_updated().since(dg.AutomationCondition.newly_requested())
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.any_deps_missing().ignore(ignored)
    ).with_label("on_upstream_update")


def on_missing_or_changed() -> dg.AutomationCondition:
    """For reference data with no upstream (dbt seeds): build it when it is missing or its file changed."""
    return (
        (dg.AutomationCondition.missing() & ~dg.AutomationCondition.in_progress())
        | dg.AutomationCondition.code_version_changed().since_last_handled()
    ).with_label("on_missing_or_changed")


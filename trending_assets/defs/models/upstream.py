"""Reading what an upstream asset last published: its materialization metadata names the window or model version
it produced (windows and candidates are content-addressed, so the metadata is the handle, not a table scan)."""

from typing import Any

import dagster as dg


def latest_metadata(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, key: dg.AssetKey
) -> dict[str, Any]:
    """The metadata values of ``key``'s latest materialization; a clear Failure when it was never materialized."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(f"{key.to_user_string()} has never been materialized; materialize it first "
                         f"(e.g. `trending materialize` or the UI)")
    return {name: entry.value for name, entry in event.asset_materialization.metadata.items()}

"""How a run's steps share the machine: the multiprocess executor, with CPU-heavy steps one at a time.

XGBoost and torch each start a thread per core and spin while they wait; two of them side by side on a small
machine oversubscribe it and both crawl (on 2 cores an XGBoost fit beside a transformer fine-tune took 3 minutes
instead of 5 seconds). Steps tagged ``HEAVY`` therefore run one at a time within a run; light steps (dbt,
windows, checks) still run beside them.
"""

import dagster as dg

COMPUTE_TAG = "trending/compute"
HEAVY = {COMPUTE_TAG: "heavy"}

executor = dg.multiprocess_executor.configured(
    {"tag_concurrency_limits": [{"key": COMPUTE_TAG, "value": "heavy", "limit": 1}]}
)


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=executor)

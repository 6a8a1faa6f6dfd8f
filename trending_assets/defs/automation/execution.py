"""How a run's steps share the machine: one process per run by default, or one per step where cores are many.

A step process of the multiprocess executor imports the code location (dagster, dbt, scipy, polars: about 5 s on
2 cores) before it does anything. Most steps here then work for under a second, so a daemon run of the whole
graph spent 45 of its 55 s starting processes. The default is therefore the in-process executor: steps run one
after the other inside the run worker, which has already loaded the code.

``TRENDING_EXECUTOR=multiprocess`` runs steps side by side instead, for machines with cores to spare. XGBoost and
torch each start a thread per core and spin while they wait; two of them side by side on a small machine
oversubscribe it and both crawl (on 2 cores an XGBoost fit beside a transformer fine-tune took 3 minutes instead
of 5 seconds). Steps tagged ``HEAVY`` therefore run one at a time within a run; light steps (dbt, windows, checks)
still run beside them.
"""

import os

import dagster as dg

COMPUTE_TAG = "trending/compute"
HEAVY = {COMPUTE_TAG: "heavy"}
EXECUTOR_ENV = "TRENDING_EXECUTOR"
EXECUTORS = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor.configured(
        {"tag_concurrency_limits": [{"key": COMPUTE_TAG, "value": "heavy", "limit": 1}]}
    ),
}


def chosen_executor(environ: dict[str, str] = os.environ) -> dg.ExecutorDefinition:
    name = environ.get(EXECUTOR_ENV, "in_process")
    if name not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={name!r} is not an executor; use one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=chosen_executor())

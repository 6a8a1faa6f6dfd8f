"""Raw ingestion: landing files -> ``raw.<table>`` day partitions, with quarantine and checks per partition."""

from collections import Counter
from datetime import date

import dagster as dg

from trending_assets.defs.ingest.partitions import daily_partitions
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib.contracts import CONTRACTS, Contract
from trending_assets.lib.ingest import PartitionLoad, load_partition
from trending_assets.lib.raw_schema import schema_problems

REJECT_WARN = 0.05
REJECT_ERROR = 0.50

LANDING_DOCS = "docs/landing.md"

landing_specs = [
    dg.AssetSpec(
        ["landing", contract.entity],
        description=(
            f"Files that scrapers drop into $TRENDING_HOME/landing/{contract.entity}/ (JSON Lines, CSV or Parquet). "
            f"Contract: {LANDING_DOCS}. Watched by landing_sensor."
        ),
        group_name="landing",
        kinds={"file"},
    )
    for contract in CONTRACTS.values()
]


def _markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|")[:80] for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _checks(key: dg.AssetKey, reports: list[PartitionLoad], schema_problems: list[str]) -> list[dg.AssetCheckResult]:
    """Check results for the loaded days; a multi-day run reports its worst day."""
    empty = [str(r.partition_date) for r in reports if r.accepted == 0]
    worst = max(reports, key=lambda r: r.reject_rate)
    rate = worst.reject_rate
    severity = dg.AssetCheckSeverity.ERROR if rate > REJECT_ERROR else dg.AssetCheckSeverity.WARN
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="non_empty",
            passed=not empty,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"empty_days": dg.MetadataValue.json(empty), "days": len(reports)},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="reject_rate",
            passed=rate <= REJECT_WARN,
            severity=severity,
            metadata={
                "reject_rate": dg.MetadataValue.float(round(rate, 4)),
                "worst_day": str(worst.partition_date),
                "rejected": worst.rejected,
                "duplicates_not_counted": worst.duplicates,
                "warn_above": REJECT_WARN,
                "error_above": REJECT_ERROR,
                "top_reasons": dg.MetadataValue.json(dict(list(worst.reject_reasons.items())[:5])),
            },
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="schema",
            passed=not schema_problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problems": dg.MetadataValue.json(schema_problems)},
        ),
    ]


def _merged_reasons(reports: list[PartitionLoad]) -> dict[str, int]:
    merged: Counter[str] = Counter()
    for report in reports:
        merged.update(report.reject_reasons)
    return dict(merged.most_common())


def _raw_spec(contract: Contract) -> dg.AssetSpec:
    return dg.AssetSpec(
        ["raw", contract.table],
        deps=[dg.AssetKey(["landing", contract.entity])],
        group_name="ingest",
        kinds={"duckdb"},
        description=(
            f"Every {contract.entity} line landed for one UTC day ({contract.partition_field}), typed, with lineage "
            f"(source_file, line_number). Bad lines go to raw.{contract.table}_rejects with a reason. Re-running a "
            "partition replaces it atomically."
        ),
    )


def _check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey(["raw", contract.table])
    return [
        dg.AssetCheckSpec("non_empty", asset=key, description="The partition has at least one accepted row."),
        dg.AssetCheckSpec("reject_rate", asset=key,
                          description=f"WARN above {REJECT_WARN:.0%} rejected lines, ERROR above {REJECT_ERROR:.0%}."),
        dg.AssetCheckSpec("schema", asset=key, description="The table matches the declared raw schema."),
    ]


RAW_CONTRACTS = {dg.AssetKey(["raw", contract.table]): contract for contract in CONTRACTS.values()}


@dg.multi_asset(
    name="raw_tables",
    specs=[_raw_spec(contract) for contract in CONTRACTS.values()],
    check_specs=[spec for contract in CONTRACTS.values() for spec in _check_specs(contract)],
    partitions_def=daily_partitions,
    can_subset=True,
    pool=WAREHOUSE_POOL,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def raw_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """One step loads every selected raw table, then reports them together.

    Downstream automation waits for a dependency in progress, but a raw table that finished is no longer in
    progress while the run goes on with the next one. Reported table by table, a batch reached dbt in two or three
    runs and ``dim_movies`` was built twice. Reported together, one landed batch gives one dbt build. A table that
    fails to load does not hold back the others: they are reported, then the step fails with its error.
    """
    results, errors = [], []
    for key in sorted(context.selected_asset_keys):
        try:
            results.append(_load(context, warehouse, key, RAW_CONTRACTS[key]))
        except Exception as error:  # noqa: BLE001 - re-raised below, once the other tables are reported
            errors.append(error)
    yield from results
    if errors:
        raise errors[0]


def _load(context: dg.AssetExecutionContext, warehouse: WarehouseResource, key: dg.AssetKey,
          contract: Contract) -> dg.MaterializeResult:
    reports = []
    with warehouse.connect() as con:
        for day in context.partition_keys:  # one run may carry a range of days; each is its own transaction
            report = load_partition(con, warehouse.home.landing, contract.entity, date.fromisoformat(day))
            context.log.info(
                f"{contract.entity} {day}: accepted {report.accepted}, quarantined {report.rejected} "
                f"from {len(report.files)} file(s)"
            )
            reports.append(report)
        problems = schema_problems(con, contract.table)
        preview_columns = list(contract.field_names[:5])
        preview = con.execute(
            f"SELECT {', '.join(preview_columns)} FROM raw.{contract.table} WHERE partition_date = ? "
            "ORDER BY source_file, line_number LIMIT 5",
            [reports[-1].partition_date],
        ).fetchall()
    for refused in reports[-1].refused:
        context.log.warning(f"refused landing file {refused.path}: {refused.reason}")
    files = [
        (r.partition_date, f.source_file, f.checksum[:12], f.accepted, f.rejected, f.lines_read)
        for r in reports for f in r.files
    ]
    accepted = sum(r.accepted for r in reports)
    rejected = sum(r.rejected for r in reports)
    return dg.MaterializeResult(
        asset_key=key,
        metadata={
            "dagster/row_count": accepted,
            "accepted": accepted,
            "rejected": rejected,
            "days": dg.MetadataValue.json(context.partition_keys),
            "files": dg.MetadataValue.md(
                _markdown_table(["day", "file", "sha256", "accepted", "rejected", "lines in file"], files)
            ),
            "reject_reasons": dg.MetadataValue.json(_merged_reasons(reports)),
            "refused_files": dg.MetadataValue.json([f"{r.path}: {r.reason}" for r in reports[-1].refused]),
            "preview": dg.MetadataValue.md(_markdown_table(preview_columns, preview)),
        },
        check_results=_checks(key, reports, problems),
    )


raw_assets = [raw_tables]

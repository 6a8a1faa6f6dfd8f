"""Validate numbered landing lines against a contract: typed rows for the accepted, a reason for the rest.

Every line read comes out exactly once, either accepted (``reason IS NULL``) or rejected with every problem
found, so ``accepted + rejected = lines read`` holds per file. Each line also gets the partition it belongs
to: the UTC date of its timestamp, or, when that is missing, invalid or in the future, the file's home
partition (the most common date among the file's accepted lines, else the file's modification date) so rejects are never
orphaned.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb

from trending_assets.lib.contracts import FIRST_PARTITION, Contract, field_sql, transform_structure

PARSED_TABLE = "_landing_parsed"
# Tolerated clock skew between a scraper and us before a timestamp counts as "in the future".
FUTURE_TOLERANCE = "INTERVAL 1 HOUR"


def _row_sql(contract: Contract, now: datetime, unterminated_line: int | None) -> str:
    values, reasons = zip(*(field_sql(f) for f in contract.fields))
    ts = f"ts_{contract.partition_field}"
    nulls = json.dumps({name: None for name in contract.field_names})
    truncated = (
        f"WHEN line_number = {unterminated_line} AND line_type IS NULL THEN 'truncated last line (no newline at end of file): malformed JSON'"
        if unterminated_line is not None else ""
    )
    future = f"{ts} > TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}' + {FUTURE_TOLERANCE}"
    too_old = f"{ts} < DATE '{FIRST_PARTITION}'"
    partition_reason = (
        f"CASE WHEN {future} THEN '{contract.partition_field}: ' || {ts} || ' is in the future' "
        f"WHEN {too_old} THEN '{contract.partition_field}: ' || {ts} || ' is before the first partition {FIRST_PARTITION}' END"
    )
    return f"""
    WITH lines AS (
        SELECT line_number, raw_text, pre_reason,
               CASE WHEN pre_reason IS NULL THEN try(json_transform(raw_text, '{transform_structure(contract)}')) END AS v,
               CASE WHEN pre_reason IS NULL THEN try(json_type(raw_text)) END AS line_type
        FROM {{lines}}
    ), typed AS (
        SELECT line_number, raw_text,
               {", ".join(values)},
               CASE WHEN pre_reason IS NOT NULL THEN pre_reason
                    {truncated}
                    WHEN line_type IS NULL THEN 'malformed JSON'
                    WHEN line_type <> 'OBJECT' THEN 'expected a JSON object, got ' || line_type
               END AS line_reason,
               [{", ".join(reasons)}] AS field_reasons,
               CASE WHEN line_type = 'OBJECT' THEN NULLIF(CAST(json_merge_patch(raw_text, '{nulls}') AS VARCHAR), '{{}}') END AS extras
        FROM lines
    ), dated AS (
        SELECT *, {contract.partition_field} AS {ts} FROM typed
    )
    SELECT * EXCLUDE (line_reason, field_reasons, {ts}),
           CAST(extras AS JSON) AS extras,
           COALESCE(line_reason, NULLIF(array_to_string(list_filter(field_reasons || [{partition_reason}],
                    lambda r: r IS NOT NULL), '; '), '')) AS reason,
           CASE WHEN NOT ({future} OR {too_old}) THEN CAST({ts} AS DATE) END AS ts_date
    FROM dated"""


def validate(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    lines_table: str,
    now: datetime,
    unterminated_line: int | None,
    fallback_date: date,
) -> str:
    """Create the temp table of validated lines (typed columns, ``reason``, ``partition_date``); return its name."""
    con.execute("SET TimeZone = 'UTC'")
    sql = _row_sql(contract, now, unterminated_line).replace("{lines}", lines_table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _landing_typed AS {sql}")
    home = con.execute(
        "SELECT ts_date FROM _landing_typed WHERE reason IS NULL GROUP BY ts_date ORDER BY count(*) DESC, ts_date LIMIT 1"
    ).fetchall()
    home_date = home[0][0] if home else fallback_date
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {PARSED_TABLE} AS
        SELECT * EXCLUDE (ts_date, extras), extras,
               COALESCE(ts_date, ?) AS partition_date
        FROM _landing_typed""",
        [home_date],
    )
    return PARSED_TABLE

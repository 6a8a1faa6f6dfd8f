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
    fields = [field_sql(f) for f in contract.fields]
    stages, previous = [], "lines"
    for depth in range(max(len(f.stages) for f in fields)):
        columns = [column for f in fields if depth < len(f.stages) for column in f.stages[depth]]
        stages.append(f"stage{depth} AS (SELECT *, {', '.join(columns)} FROM {previous})")
        previous = f"stage{depth}"
    ts = f"ts_{contract.partition_field}"
    names = "[" + ", ".join(f"'{name}'" for name in contract.field_names) + "]"
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
    # Parsing is the expensive part: json_type only re-parses lines that do not start with '{' (a line that
    # parsed and starts with '{' is an object), and json_merge_patch only runs on lines with unknown keys.
    return f"""
    WITH lines AS (
        SELECT line_number, raw_text, pre_reason, v,
               CASE WHEN v IS NOT NULL AND prefix(raw_text, '{{') THEN 'OBJECT'
                    WHEN pre_reason IS NULL THEN try(json_type(raw_text)) END AS line_type
        FROM (SELECT *, CASE WHEN pre_reason IS NULL
                             THEN try(json_transform(raw_text, '{transform_structure(contract)}')) END AS v
              FROM {{lines}})
    ), {", ".join(stages)}, typed AS (
        SELECT line_number, raw_text,
               {", ".join(f.value for f in fields)},
               CASE WHEN pre_reason IS NOT NULL THEN pre_reason
                    {truncated}
                    WHEN line_type IS NULL THEN 'malformed JSON'
                    WHEN line_type <> 'OBJECT' THEN 'expected a JSON object, got ' || line_type
               END AS line_reason,
               [{", ".join(f.reason for f in fields)}] AS field_reasons,
               CASE WHEN line_type = 'OBJECT' AND len(list_filter(json_keys(raw_text), lambda k: NOT list_contains({names}, k))) > 0
                    THEN NULLIF(CAST(json_merge_patch(raw_text, '{nulls}') AS VARCHAR), '{{}}') END AS extras
        FROM {previous}
    ), dated AS (
        SELECT *, {contract.partition_field} AS {ts} FROM typed
    )
    SELECT * EXCLUDE (line_reason, field_reasons, {ts}, extras),
           CAST(extras AS JSON) AS extras,
           COALESCE(line_reason, NULLIF(array_to_string(list_filter(field_reasons || [{partition_reason}],
                    lambda r: r IS NOT NULL), '; '), '')) AS reason,
           CASE WHEN NOT ({future} OR {too_old}) THEN CAST({ts} AS DATE) END AS partition_date
    FROM dated"""


def validate(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    lines_table: str,
    now: datetime,
    unterminated_line: int | None,
    fallback_date: date,
    accepted_text: bool = True,
) -> str:
    """Create the temp table of validated lines (typed columns, ``reason``, ``partition_date``); return its name.

    ``raw_text`` is kept for rejected lines, and for accepted ones only with ``accepted_text`` (copying every
    line's text costs time and memory that a caller who never rejects accepted lines later need not pay).
    """
    con.execute("SET TimeZone = 'UTC'")
    sql = _row_sql(contract, now, unterminated_line).replace("{lines}", lines_table)
    if not accepted_text:
        sql = f"SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN raw_text END AS raw_text) FROM ({sql})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PARSED_TABLE} AS {sql}")
    home = con.execute(
        f"SELECT partition_date FROM {PARSED_TABLE} WHERE reason IS NULL "
        "GROUP BY partition_date ORDER BY count(*) DESC, partition_date LIMIT 1"
    ).fetchall()
    home_date = home[0][0] if home else fallback_date
    # Lines without a usable date are few: updating them in place beats copying the table.
    con.execute(f"UPDATE {PARSED_TABLE} SET partition_date = ? WHERE partition_date IS NULL", [home_date])
    return PARSED_TABLE

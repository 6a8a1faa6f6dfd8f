"""The landing contract as data: which fields each entity has, their types, and what makes a line invalid.

Each field compiles to two SQL expressions over ``v``, the line parsed with every contract field kept as raw
JSON: the typed value, and a rejection reason (NULL when the value is fine). Validation therefore runs inside
DuckDB, vectorised, instead of line by line in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from trending_assets.lib import genres

FIRST_PARTITION = date(2020, 1, 1)
EVENT_TYPES = (
    "impression", "click", "view", "rating", "thumbs_up", "thumbs_down", "genre_correction", "annotation", "alert",
)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | number | integer | timestamp | date_or_year | genres | json_text | enum
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    entity: str  # landing folder name
    table: str  # raw table name
    fields: tuple[Field, ...]
    partition_field: str  # the timestamp whose UTC date is the partition
    key: str | None  # the id column; for feedback a missing one is derived
    extra_columns: tuple[str, ...] = field(default=())

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


MOVIES = Contract(
    entity="movies",
    table="movies",
    partition_field="scraped_at",
    key="movie_id",
    fields=(
        Field("movie_id", "string", required=True),
        Field("title", "string", required=True),
        Field("overview", "string"),
        Field("genres", "genres"),
        Field("release_date", "date_or_year"),
        Field("scraped_at", "timestamp", required=True),
        Field("source", "string"),
        Field("popularity", "number", minimum=0),
        Field("vote_average", "number", minimum=0, maximum=10),
        Field("vote_count", "integer", minimum=0),
        Field("runtime_minutes", "integer", minimum=0, maximum=10_000),
        Field("language", "string"),
    ),
)

REVIEWS = Contract(
    entity="reviews",
    table="reviews",
    partition_field="scraped_at",
    key="review_id",
    fields=(
        Field("review_id", "string", required=True),
        Field("movie_id", "string", required=True),
        Field("text", "string"),
        Field("rating", "number", minimum=0, maximum=10),
        Field("author", "string"),
        Field("created_at", "timestamp"),
        Field("scraped_at", "timestamp", required=True),
    ),
)

FEEDBACK = Contract(
    entity="feedback",
    table="feedback_events",
    partition_field="occurred_at",
    key="event_id",
    fields=(
        Field("event_id", "string"),
        Field("user_id", "string", required=True),
        Field("movie_id", "string"),
        Field("event_type", "enum", required=True, allowed=EVENT_TYPES),
        Field("value", "number"),
        Field("payload", "json_text"),
        Field("model_version", "string"),
        Field("experiment_id", "string"),
        Field("variant", "string"),
        Field("occurred_at", "timestamp", required=True),
    ),
)

CONTRACTS: dict[str, Contract] = {c.entity: c for c in (MOVIES, REVIEWS, FEEDBACK)}


def contract_for(entity: str) -> Contract:
    """The contract of a landing folder (movies, reviews or feedback)."""
    try:
        return CONTRACTS[entity]
    except KeyError:
        raise ValueError(f"unknown entity {entity!r}; expected one of {', '.join(CONTRACTS)}") from None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _alias_map_sql() -> str:
    pairs = {**{g: g for g in genres.CANONICAL_GENRES}, **genres.ALIASES}
    return "MAP {" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in sorted(pairs.items())) + "}"


def transform_structure(contract: Contract) -> str:
    """The ``json_transform`` structure that keeps every contract field as raw JSON."""
    return "{" + ", ".join(f'"{name}": "JSON"' for name in contract.field_names) + "}"


def _shown(j: str) -> str:
    """A short rendering of the offending value for a reason text."""
    return f"left(CAST({j} AS VARCHAR), 60)"


def field_sql(f: Field) -> tuple[str, str]:
    """(typed value expression, reason expression) for one field; ``v`` is the transformed line."""
    j = f'v."{f.name}"'
    jt = f"json_type({j})"
    present = f"({j} IS NOT NULL AND {jt} <> 'NULL')"
    text = f"({j} ->> '$')"
    wrong = f"'{f.name}: expected {{what}}, got ' || {_shown(j)}"
    if f.kind in ("string", "enum"):
        value = f"CASE WHEN {jt} IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN') THEN NULLIF(trim({text}), '') END"
        bad = f"{present} AND {jt} IN ('ARRAY', 'OBJECT')"
        reason = f"CASE WHEN {bad} THEN {wrong.format(what='text')}"
        if f.kind == "enum":
            allowed = ", ".join(_quote(a) for a in f.allowed)
            reason += (
                f" WHEN {value} IS NOT NULL AND {value} NOT IN ({allowed}) THEN "
                f"'{f.name}: ' || {value} || ' is not one of {', '.join(f.allowed)}'"
            )
        reason += " END"
    elif f.kind in ("number", "integer"):
        sql_type = "DOUBLE" if f.kind == "number" else "BIGINT"
        number = (
            f"CASE WHEN {jt} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST({text} AS DOUBLE) "
            f"WHEN {jt} = 'VARCHAR' AND trim({text}) <> '' THEN TRY_CAST(trim({text}) AS DOUBLE) END"
        )
        value = f"CAST({number} AS {sql_type})"
        empty_text = f"({jt} = 'VARCHAR' AND trim({text}) = '')"
        checks = [f"WHEN {present} AND NOT {empty_text} AND {number} IS NULL THEN {wrong.format(what='a number')}"]
        if f.kind == "integer":
            checks.append(f"WHEN {number} <> floor({number}) THEN {wrong.format(what='a whole number')}")
        bounds = []
        if f.minimum is not None:
            bounds.append(f"{number} < {f.minimum}")
        if f.maximum is not None:
            bounds.append(f"{number} > {f.maximum}")
        if bounds:
            rng = f"{f.minimum if f.minimum is not None else '-inf'}..{f.maximum if f.maximum is not None else 'inf'}"
            checks.append(f"WHEN {' OR '.join(bounds)} THEN '{f.name}: ' || {number} || ' is outside {rng}'")
        reason = "CASE " + " ".join(checks) + " END"
    elif f.kind == "timestamp":
        value = f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"
        reason = (
            f"CASE WHEN {present} AND {value} IS NULL THEN "
            f"'{f.name}: expected an ISO timestamp, got ' || {_shown(j)} END"
        )
    elif f.kind == "date_or_year":
        value = f"CASE WHEN NOT regexp_full_match(trim({text}), '\\d{{4}}') THEN TRY_CAST(trim({text}) AS DATE) END"
        year = (
            f"CASE WHEN regexp_full_match(trim({text}), '\\d{{4}}') THEN CAST(trim({text}) AS INTEGER) "
            f"ELSE year({value}) END"
        )
        reason = (
            f"CASE WHEN {present} AND {year} IS NULL THEN "
            f"'{f.name}: expected an ISO date or a year, got ' || {_shown(j)} END"
        )
        return value + f" AS {f.name}, {year} AS release_year", reason
    elif f.kind == "genres":
        names = (
            f"CASE {jt} WHEN 'ARRAY' THEN TRY_CAST(from_json({j}, '[\"VARCHAR\"]') AS VARCHAR[]) "
            f"WHEN 'VARCHAR' THEN regexp_split_to_array({text}, '[|,]') END"
        )
        normal = f"list_filter(list_transform({names}, lambda g: regexp_replace(lower(trim(g)), '[\\s\\-]+', '_', 'g')), lambda g: g <> '')"
        alias = _alias_map_sql()
        value = (
            f"list_sort(list_distinct(list_filter(list_transform({normal}, lambda g: {alias}[g]), lambda g: g IS NOT NULL)))"
            f" AS genres, list_filter({normal}, lambda g: {alias}[g] IS NULL) AS genres_unknown, "
            f"CASE WHEN {jt} = 'VARCHAR' THEN {text} ELSE CAST({j} AS VARCHAR) END AS genres_raw"
        )
        reason = (
            f"CASE WHEN {present} AND {jt} NOT IN ('ARRAY', 'VARCHAR') THEN {wrong.format(what='a list of genres')} "
            f"WHEN {jt} = 'ARRAY' AND {names} IS NULL THEN {wrong.format(what='a list of genre names')} END"
        )
        return value, reason
    elif f.kind == "json_text":
        value = (
            f"CASE WHEN {jt} = 'VARCHAR' AND json_valid({text}) THEN CAST({text} AS JSON) "
            f"WHEN {jt} IN ('OBJECT', 'ARRAY') THEN {j} END"
        )
        reason = (
            f"CASE WHEN {jt} = 'VARCHAR' AND NOT json_valid({text}) THEN "
            f"'{f.name}: expected JSON text, got ' || {_shown(j)} "
            f"WHEN {present} AND {jt} NOT IN ('VARCHAR', 'OBJECT', 'ARRAY') THEN {wrong.format(what='JSON text')} END"
        )
    else:
        raise ValueError(f"field {f.name}: unknown kind {f.kind!r}")
    if f.required:
        reason = f"CASE WHEN {value} IS NULL AND NOT ({reason} IS NOT NULL) THEN 'missing required field {f.name}' ELSE {reason} END"
    return f"{value} AS {f.name}", reason

"""The landing contract as data: which fields each entity has, their types, and what makes a line invalid.

Each field compiles to SQL over ``v``, the line parsed with every contract field kept as raw JSON: the typed value
and a rejection reason (NULL when the value is fine), read from intermediate columns (the kind of JSON value, its
text, ...) that are computed once per line. Validation therefore runs inside DuckDB, vectorised, instead of line
by line in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from trending_assets.lib import genres

FIRST_PARTITION = date(2020, 1, 1)
EVENT_TYPES = (
    "impression", "click", "view", "rating", "thumbs_up", "thumbs_down", "genre_correction", "annotation", "alert",
    # written by the serving API: one exposure per request (who got which model, in which experiment and variant)
    # and one shadow_prediction per shadow model and request (never shown to the user)
    "exposure", "shadow_prediction",
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


def _genre_names() -> dict[str, str]:
    return {**{g: g for g in genres.CANONICAL_GENRES}, **genres.ALIASES}


def _alias_map_sql() -> str:
    return "MAP {" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in sorted(_genre_names().items())) + "}"


def _canonical_list_sql() -> str:
    """Every genre a name can resolve to, sorted: filtering it keeps a list sorted and distinct for free."""
    return "[" + ", ".join(_quote(g) for g in sorted(set(_genre_names().values()))) + "]"


def transform_structure(contract: Contract) -> str:
    """The ``json_transform`` structure that keeps every contract field as raw JSON."""
    return "{" + ", ".join(f'"{name}": "JSON"' for name in contract.field_names) + "}"


def _shown(j: str) -> str:
    """A short rendering of the offending value for a reason text."""
    return f"left(CAST({j} AS VARCHAR), 60)"


# The kind of a JSON value from its first character: values come out of json_transform re-serialised (no
# leading whitespace), and this is much cheaper than json_type, which parses the value again.
_KIND = (
    "CASE {ord} WHEN 34 THEN 'string' WHEN 123 THEN 'object' WHEN 91 THEN 'array' WHEN 116 THEN 'boolean' "
    "WHEN 102 THEN 'boolean' WHEN 110 THEN 'null' ELSE 'number' END"
)


def _trimmed(text: str) -> str:
    """``trim(text)``, skipping the call when both ends are visible ASCII (DuckDB's trim walks the whole string)."""
    return (
        f"CASE WHEN ord({text}) BETWEEN 33 AND 126 AND regexp_matches({text}, '[!-~]$') THEN {text} "
        f"ELSE trim({text}) END"
    )


@dataclass(frozen=True)
class FieldSQL:
    """SQL for one field: intermediate columns, the typed value, and a rejection reason (NULL when fine).

    ``stages`` hold ``expr AS "field:part"`` columns, each computed once per line: the first stage reads ``v``,
    the line parsed with every contract field kept as raw JSON; each later stage reads the ones before. ``value``
    (``expr AS column``, one or more) and ``reason`` read the last stage.
    """

    stages: tuple[tuple[str, ...], ...]
    value: str
    reason: str


def field_sql(f: Field) -> FieldSQL:
    """The SQL that types and checks one field; see ``FieldSQL``."""
    def part(name: str) -> str:
        return f'"{f.name}:{name}"'

    raw = f'v."{f.name}"'
    j, json_kind, text = part("json"), part("kind"), part("text")
    stages: list[tuple[str, ...]] = [(
        f"{raw} AS {j}",
        f"CASE WHEN {raw} IS NOT NULL THEN {_KIND.format(ord=f'ord({raw})')} END AS {json_kind}",
        f"CASE WHEN ord({raw}) = 34 THEN ({raw} ->> '$') ELSE CAST({raw} AS VARCHAR) END AS {text}",
    )]
    present = f"({j} IS NOT NULL AND {json_kind} <> 'null')"
    wrong = f"'{f.name}: expected {{what}}, got ' || {_shown(j)}"
    if f.kind in ("string", "enum"):
        value = part("value")
        stages.append((
            f"CASE WHEN {json_kind} IN ('string', 'number', 'boolean') "
            f"THEN NULLIF({_trimmed(text)}, '') END AS {value}",
        ))
        reason = f"CASE WHEN {present} AND {json_kind} IN ('array', 'object') THEN {wrong.format(what='text')}"
        if f.kind == "enum":
            allowed = ", ".join(_quote(a) for a in f.allowed)
            reason += (
                f" WHEN {value} IS NOT NULL AND {value} NOT IN ({allowed}) THEN "
                f"'{f.name}: ' || {value} || ' is not one of {', '.join(f.allowed)}'"
            )
        reason += " END"
    elif f.kind in ("number", "integer"):
        sql_type = "DOUBLE" if f.kind == "number" else "BIGINT"
        number = part("number")
        stages.append((
            f"CASE WHEN {json_kind} = 'number' THEN TRY_CAST({text} AS DOUBLE) "
            f"WHEN {json_kind} = 'string' AND trim({text}) <> '' THEN TRY_CAST(trim({text}) AS DOUBLE) END AS {number}",
        ))
        value = f"CASE WHEN isfinite({number}) THEN TRY_CAST({number} AS {sql_type}) END"
        empty_text = f"({json_kind} = 'string' AND trim({text}) = '')"
        checks = [
            f"WHEN {present} AND NOT {empty_text} AND {number} IS NULL THEN {wrong.format(what='a number')}",
            f"WHEN NOT isfinite({number}) THEN {wrong.format(what='a finite number')}",
        ]
        if f.kind == "integer":
            checks.append(f"WHEN {number} <> floor({number}) THEN {wrong.format(what='a whole number')}")
            checks.append(f"WHEN TRY_CAST({number} AS BIGINT) IS NULL THEN {wrong.format(what='a 64-bit integer')}")
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
        value = part("value")
        stages.append((f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) AS {value}",))
        reason = (
            f"CASE WHEN {present} AND {value} IS NULL THEN "
            f"'{f.name}: expected an ISO timestamp, got ' || {_shown(j)} END"
        )
    elif f.kind == "date_or_year":
        trimmed, is_year, value, year = part("trimmed"), part("is_year"), part("value"), part("year")
        stages += [
            (f"trim({text}) AS {trimmed}",),
            (f"regexp_full_match({trimmed}, '\\d{{4}}') AS {is_year}",),
            (f"CASE WHEN NOT {is_year} THEN TRY_CAST({trimmed} AS DATE) END AS {value}",),
            (f"CASE WHEN {is_year} THEN CAST({trimmed} AS INTEGER) ELSE year({value}) END AS {year}",),
        ]
        reason = (
            f"CASE WHEN {present} AND {year} IS NULL THEN "
            f"'{f.name}: expected an ISO date or a year, got ' || {_shown(j)} END"
        )
        return FieldSQL(tuple(stages), f"{value} AS {f.name}, {year} AS release_year", reason)
    elif f.kind == "genres":
        names, normal, resolved = part("names"), part("normal"), part("resolved")
        stages += [
            (f"CASE {json_kind} WHEN 'array' THEN TRY_CAST(from_json({j}, '[\"VARCHAR\"]') AS VARCHAR[]) "
             f"WHEN 'string' THEN regexp_split_to_array({text}, '[|,]') END AS {names}",),
            (f"list_filter(list_transform({names}, lambda g: regexp_replace(lower(trim(g)), '[\\s\\-]+', '_', 'g')), "
             f"lambda g: g <> '') AS {normal}",),
            (f"list_transform({normal}, lambda g: {_alias_map_sql()}[g]) AS {resolved}",),
        ]
        # The canonical genres found, sorted and distinct (cheaper than list_sort(list_distinct(...))).
        value = (
            f"CASE WHEN {resolved} IS NOT NULL "
            f"THEN list_filter({_canonical_list_sql()}, lambda c: list_contains({resolved}, c)) END AS genres, "
            f"list_filter({normal}, lambda g, i: {resolved}[i] IS NULL) AS genres_unknown, "
            f"CASE WHEN {json_kind} = 'string' THEN {text} ELSE CAST({j} AS VARCHAR) END AS genres_raw"
        )
        reason = (
            f"CASE WHEN {present} AND {json_kind} NOT IN ('array', 'string') THEN {wrong.format(what='a list of genres')} "
            f"WHEN {json_kind} = 'array' AND {names} IS NULL THEN {wrong.format(what='a list of genre names')} END"
        )
        return FieldSQL(tuple(stages), value, reason)
    elif f.kind == "json_text":
        value = (
            f"CASE WHEN {json_kind} = 'string' AND json_valid({text}) THEN CAST({text} AS JSON) "
            f"WHEN {json_kind} IN ('object', 'array') THEN {j} END"
        )
        reason = (
            f"CASE WHEN {json_kind} = 'string' AND NOT json_valid({text}) THEN "
            f"'{f.name}: expected JSON text, got ' || {_shown(j)} "
            f"WHEN {present} AND {json_kind} NOT IN ('string', 'object', 'array') THEN {wrong.format(what='JSON text')} END"
        )
    else:
        raise ValueError(f"field {f.name}: unknown json_kind {f.kind!r}")
    if f.required:
        reason = f"CASE WHEN {value} IS NULL AND NOT ({reason} IS NOT NULL) THEN 'missing required field {f.name}' ELSE {reason} END"
    return FieldSQL(tuple(stages), f"{value} AS {f.name}", reason)

-- One row per feedback event_id: its earliest occurrence. Clients retry and files overlap, so an event may
-- arrive more than once, within a partition or across partitions; it counts once.
with occurrences as (
    select * from {{ source('raw', 'feedback_events') }}
),

-- Users write genres as they like ("Sci-Fi", "romcom"); the taxonomy seed maps every spelling to its genre.
taxonomy as (
    select map(list(name), list(genre)) as genre_of from {{ ref('genre_taxonomy') }}
),

named as (
    select
        occurrences.*,
        case when event_type = 'genre_correction' then
            list_filter(list_transform(
                try_cast(json_extract(payload, '$.genres') as varchar[]),
                lambda genre: regexp_replace(lower(trim(genre)), '[\s\-]+', '_', 'g')
            ), lambda name: name <> '')
        end as correction_names,
        taxonomy.genre_of
    from occurrences cross join taxonomy
)

select
    event_id,
    event_id_derived,
    user_id,
    movie_id,
    event_type,
    value,
    payload,
    list_sort(list_distinct(list_filter(
        list_transform(correction_names, lambda name: genre_of[name]), lambda genre: genre is not null
    ))) as corrected_genres,
    list_distinct(list_filter(correction_names, lambda name: genre_of[name] is null)) as corrected_genres_unknown,
    model_version,
    experiment_id,
    variant,
    occurred_at,
    occurred_at::date as event_date,
    count(*) over (partition by event_id) as n_occurrences,
    partition_date,
    source_file,
    line_number,
    loaded_at
from named
qualify row_number() over (
    partition by event_id order by occurred_at, source_file, line_number
) = 1

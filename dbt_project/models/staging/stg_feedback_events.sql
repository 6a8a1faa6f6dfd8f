-- One row per feedback event_id: its earliest occurrence. Clients retry and files overlap, so an event may
-- arrive more than once, within a partition or across partitions; it counts once.
with occurrences as (
    select * from {{ source('raw', 'feedback_events') }}
)

select
    event_id,
    event_id_derived,
    user_id,
    movie_id,
    event_type,
    value,
    payload,
    -- Names normalised as lib/genres.normalize_name does; aliases are not resolved here.
    case when event_type = 'genre_correction' then
        list_sort(list_distinct(list_transform(
            try_cast(json_extract(payload, '$.genres') as varchar[]),
            lambda genre: regexp_replace(lower(trim(genre)), '[\s\-]+', '_', 'g')
        )))
    end as corrected_genres,
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
from occurrences
qualify row_number() over (
    partition by event_id order by occurred_at, source_file, line_number
) = 1

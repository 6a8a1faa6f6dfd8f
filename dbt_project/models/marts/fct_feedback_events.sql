{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        post_hook="{{ drop_delete_markers() }}",
    )
}}
-- One row per feedback event (its earliest occurrence), rebuilt a whole event_date at a time.

with events as (
    select * from {{ ref('stg_feedback_events') }}
),

partition_loads as (
    select partition_date, max(loaded_at) as loaded_at
    from {{ source('raw', 'feedback_events') }}
    group by partition_date
),

{% if is_incremental() %}
reloaded as (
    {{ reloaded_partitions(source('raw', 'feedback_events'), 'event_date') }}
),

-- An event seen in a re-loaded partition may be kept, as its earliest occurrence, on another date: before the
-- re-load (a duplicate that now loses to an earlier one) or after it (the earlier one is gone). Both dates
-- are rebuilt so that it stays counted exactly once.
touched_events as (
    select event_id
    from {{ source('raw', 'feedback_events') }}
    where partition_date in (select partition_date from reloaded)
    union
    select event_id
    from {{ this }}
    where event_date in (select partition_date from reloaded)
),

dates_to_rebuild as (
    select partition_date as event_date from reloaded
    union
    select event_date from {{ this }} where event_id in (select event_id from touched_events)
    union
    select event_date from events where event_id in (select event_id from touched_events)
),
{% endif %}

final as (
    select
        events.event_id,
        events.event_id_derived,
        events.user_id,
        events.movie_id,
        events.event_type,
        events.value,
        events.payload,
        events.corrected_genres,
        events.model_version,
        events.experiment_id,
        events.variant,
        events.occurred_at,
        events.event_date,
        events.n_occurrences,
        events.source_file,
        events.line_number,
        partition_loads.loaded_at as _loaded_at,
        {{ build_timestamp() }} as _built_at
    from events
    inner join partition_loads on partition_loads.partition_date = events.partition_date
    {% if is_incremental() %}
    where events.event_date in (select event_date from dates_to_rebuild)
    {% endif %}
)

select * from final
{% if is_incremental() %}
-- Delete markers: see macros/incremental.sql.
union all by name
select event_date from dates_to_rebuild
{% endif %}

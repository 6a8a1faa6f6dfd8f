{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        post_hook="{{ drop_delete_markers() }}",
    )
}}
-- Feedback per movie, day and event type, rolled up from fct_feedback_events; rebuilds the dates it rebuilt.

with events as (
    select * from {{ ref('fct_feedback_events') }}
),

{% if is_incremental() %}
dates_to_rebuild as (
    {{ rebuilt_dates(ref('fct_feedback_events')) }}
),
{% endif %}

daily as (
    select
        movie_id,
        event_date,
        event_type,
        count(*) as n_events,
        count(distinct user_id) as n_users,
        sum(value) as sum_value,
        avg(value) as avg_value,
        max(_loaded_at) as _loaded_at,
        max(_built_at) as _built_at
    from events
    {% if is_incremental() %}
    where event_date in (select event_date from dates_to_rebuild)
    {% endif %}
    group by movie_id, event_date, event_type
)

select * from daily
{% if is_incremental() %}
-- Delete markers: see macros/incremental.sql.
union all by name
select event_date from dates_to_rebuild
{% endif %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        post_hook="{{ drop_delete_markers() }}",
    )
}}
-- One row per genre_correction event: the genres a user says a movie has, beside the genres it was scraped
-- with. Rebuilds the dates fct_feedback_events rebuilt; the scraped genres are those of the movie's latest
-- version when the date was built.

with movies as (
    select movie_id, genres from {{ ref('stg_movies') }}
),

{% if is_incremental() %}
dates_to_rebuild as (
    {{ rebuilt_dates(ref('fct_feedback_events')) }}
),
{% endif %}

corrections as (
    select * from {{ ref('fct_feedback_events') }}
    where event_type = 'genre_correction'
    {% if is_incremental() %}
    and event_date in (select event_date from dates_to_rebuild)
    {% endif %}
),

final as (
    select
        corrections.event_id,
        corrections.user_id,
        corrections.movie_id,
        corrections.corrected_genres,
        movies.genres as scraped_genres,
        list_filter(
            corrections.corrected_genres, lambda genre: not list_contains(coalesce(movies.genres, []), genre)
        ) as genres_added,
        list_filter(
            coalesce(movies.genres, []), lambda genre: not list_contains(coalesce(corrections.corrected_genres, []), genre)
        ) as genres_removed,
        corrections.model_version,
        corrections.occurred_at,
        corrections.event_date,
        corrections._loaded_at,
        corrections._built_at
    from corrections
    left join movies on movies.movie_id = corrections.movie_id
)

select * from final
{% if is_incremental() %}
-- Delete markers: see macros/incremental.sql.
union all by name
select event_date from dates_to_rebuild
{% endif %}

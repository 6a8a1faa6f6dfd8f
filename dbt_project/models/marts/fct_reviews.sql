{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='review_id',
        on_schema_change='fail',
        post_hook="{{ drop_delete_markers() }}",
    )
}}
-- One row per review: its latest version. A review's versions are spread over the partitions it was scraped
-- in, so the mart is rebuilt by review_id: every review with a version in a re-loaded partition, and every
-- review whose kept version came from one (it may have lost that version, or vanished).
-- depends_on: {{ source('raw', 'reviews') }}  (read only on incremental runs, which dbt's parser does not see)

with reviews as (
    select * from {{ ref('stg_reviews') }}
),

{% if is_incremental() %}
reloaded as (
    {{ reloaded_partitions(source('raw', 'reviews'), 'partition_date') }}
),

reviews_to_rebuild as (
    select review_id
    from {{ source('raw', 'reviews') }}
    where partition_date in (select partition_date from reloaded)
    union
    select review_id
    from {{ this }}
    where partition_date in (select partition_date from reloaded)
),
{% endif %}

final as (
    select
        review_id,
        movie_id,
        text,
        rating,
        author,
        created_at,
        scraped_at,
        first_seen_at,
        n_versions,
        partition_date,
        source_file,
        line_number,
        latest_loaded_at as _loaded_at
    from reviews
    {% if is_incremental() %}
    where review_id in (select review_id from reviews_to_rebuild)
    {% endif %}
)

select * from final
{% if is_incremental() %}
-- Delete markers: see macros/incremental.sql.
union all by name
select review_id from reviews_to_rebuild
{% endif %}

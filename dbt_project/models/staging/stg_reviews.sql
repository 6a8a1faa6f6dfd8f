-- One row per review: its latest scraped version.
with versions as (
    select * from {{ source('raw', 'reviews') }}
)

select
    review_id,
    movie_id,
    text,
    rating,
    author,
    created_at,
    scraped_at,
    min(scraped_at) over review as first_seen_at,
    count(distinct scraped_at) over review as n_versions,
    partition_date,
    source_file,
    line_number,
    loaded_at,
    -- The newest load among all of the review's versions: fct_reviews' watermark.
    max(loaded_at) over review as latest_loaded_at
from versions
window review as (partition by review_id)
qualify row_number() over (
    partition by review_id order by scraped_at desc, source_file desc, line_number desc
) = 1

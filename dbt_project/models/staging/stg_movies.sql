-- One row per movie: its latest scraped version, with when it was first seen and how often it was scraped.
with versions as (
    select * from {{ source('raw', 'movies') }}
)

select
    movie_id,
    title,
    overview,
    -- list_distinct also drops NULL elements; an empty list stays empty (every given name was unknown).
    list_sort(list_distinct(genres)) as genres,
    coalesce(len(list_distinct(genres)) > 0, false) as is_labeled,
    list_sort(list_distinct(genres_unknown)) as genres_unknown,
    genres_raw,
    release_date,
    release_year,
    popularity,
    vote_average,
    vote_count,
    runtime_minutes,
    language,
    source,
    scraped_at,
    min(scraped_at) over movie as first_seen_at,
    (min(scraped_at) over movie)::date as first_seen_date,
    count(distinct scraped_at) over movie as n_versions,
    partition_date,
    source_file,
    line_number,
    loaded_at
from versions
window movie as (partition by movie_id)
qualify row_number() over (
    partition by movie_id order by scraped_at desc, source_file desc, line_number desc
) = 1

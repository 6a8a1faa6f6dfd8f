-- One row per movie: its latest scraped version, labels and review summary. Rebuilt whole on every run.

with movies as (
    select * from {{ ref('stg_movies') }}
),

reviews as (
    select
        movie_id,
        count(*) as n_reviews,
        avg(rating) as avg_review_rating
    from {{ ref('stg_reviews') }}
    group by movie_id
)

select
    movies.movie_id,
    movies.title,
    movies.overview,
    movies.genres,
    movies.is_labeled,
    movies.genres_unknown,
    movies.release_date,
    movies.release_year,
    movies.popularity,
    movies.vote_average,
    movies.vote_count,
    movies.runtime_minutes,
    movies.language,
    movies.source,
    movies.first_seen_at,
    movies.first_seen_date,
    movies.scraped_at as last_scraped_at,
    movies.n_versions,
    coalesce(reviews.n_reviews, 0) as n_reviews,
    reviews.avg_review_rating
from movies
left join reviews on reviews.movie_id = movies.movie_id

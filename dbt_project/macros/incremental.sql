{#-
    Building blocks of the incremental marts. The scheme (README.md, "Incremental marts"):

    * Each incremental mart is `delete+insert` on the key it rebuilds whole: a date for the feedback marts,
      a review_id for fct_reviews. An incremental run selects every row of the keys to rebuild.
    * Marts fed by raw find the keys from raw's `loaded_at`: a partition re-loaded after the newest
      `_loaded_at` the mart holds has changed (`reloaded_partitions`).
    * Marts fed by fct_feedback_events rebuild the dates it rebuilt since they last ran (`rebuilt_dates`),
      found from its `_built_at`.
    * delete+insert deletes only keys that appear in the new rows, so a key left with no rows (a partition
      re-loaded with its only correction gone) would keep stale rows. Each incremental batch therefore also
      carries one delete marker per rebuilt key: a row with the key and every other column NULL, removed by
      the `drop_delete_markers` post-hook in the same transaction. Real rows always have `_loaded_at`.
-#}

{% macro reloaded_partitions(raw_relation, this_partition_column) -%}
    {#- Partition dates of `raw_relation` changed since this model last read it: those (re)loaded after the
        newest `_loaded_at` in the model, and those the model holds that raw no longer has (a partition
        re-loaded empty). Columns: partition_date. Use only under `is_incremental()`. -#}
    select distinct partition_date
    from {{ raw_relation }}
    where loaded_at > (select coalesce(max(_loaded_at), '-infinity'::timestamp) from {{ this }})
    union
    select distinct {{ this_partition_column }}
    from {{ this }}
    where {{ this_partition_column }} not in (select partition_date from {{ raw_relation }})
{%- endmacro %}


{% macro rebuilt_dates(upstream_relation) -%}
    {#- Event dates that `upstream_relation` (an incremental mart keyed on event_date) rebuilt after this model
        last ran, and dates this model holds that upstream no longer has. Columns: event_date. -#}
    select distinct event_date
    from {{ upstream_relation }}
    where _built_at > (select coalesce(max(_built_at), '-infinity'::timestamp) from {{ this }})
    union
    select distinct event_date
    from {{ this }}
    where event_date not in (select event_date from {{ upstream_relation }})
{%- endmacro %}


{% macro build_timestamp() -%}
    {#- When this dbt invocation started (UTC): the `_built_at` of every row it writes. -#}
    '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}'::timestamp
{%- endmacro %}


{% macro drop_delete_markers() -%}
    {#- Post-hook of the incremental marts: remove the delete markers the batch carried (rows without
        `_loaded_at`, see above). Harmless on a first or full-refresh build, which has none. -#}
    delete from {{ this }} where _loaded_at is null
{%- endmacro %}

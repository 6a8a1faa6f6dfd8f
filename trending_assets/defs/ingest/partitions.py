import dagster as dg

from trending_assets.lib.contracts import FIRST_PARTITION

# One partition per UTC day of scraped_at / occurred_at; end_offset=1 so today's scrapes have a partition.
daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_PARTITION.isoformat(), end_offset=1)

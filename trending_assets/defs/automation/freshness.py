"""How fresh the loop's outputs should be, as Dagster freshness policies (shown on each asset and in the UI's
health view): a training window older than a week means no retrain ran, a monitor older than a day means new
data went unwatched. Attached to the assets where they are defined."""

from datetime import timedelta

import dagster as dg

WEEKLY_RETRAIN = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))
DAILY_MONITOR = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=2), warn_window=timedelta(days=1))

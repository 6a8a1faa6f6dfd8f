"""The rollout policy: the canary ramp, how much traffic each step needs, the A/B test's MDE, and whether a
winner becomes champion by itself (``approval: auto``) or waits for a person (``manual``).

Each setting can come from the environment of the daemon and code server (``TRENDING_APPROVAL``,
``TRENDING_ROLLOUT_RAMP``, ``TRENDING_ROLLOUT_MIN_USERS``, ``TRENDING_SHADOW_MIN_REQUESTS``,
``TRENDING_ROLLOUT_MDE``, ``TRENDING_ROLLOUT_MAX_AB_DAYS``)."""

import dagster as dg

from trending_assets.defs.retraining.resources import env_default
from trending_assets.lib.rollout import RolloutPolicy


class RolloutSettings(dg.ConfigurableResource):
    approval: str = env_default("TRENDING_APPROVAL", "auto")
    ramp: str = env_default("TRENDING_ROLLOUT_RAMP", "1,5,25,50")
    min_users_per_step: int = env_default("TRENDING_ROLLOUT_MIN_USERS", "20")
    shadow_min_requests: int = env_default("TRENDING_SHADOW_MIN_REQUESTS", "100")
    mde: float = env_default("TRENDING_ROLLOUT_MDE", "0.004")
    max_ab_days: int = env_default("TRENDING_ROLLOUT_MAX_AB_DAYS", "14")
    lock_wait_s: float = 20.0

    def policy(self) -> RolloutPolicy:
        """The settings as the Dagster-free policy (ValueError naming the bad setting)."""
        try:
            ramp = tuple(float(step) for step in self.ramp.split(","))
        except ValueError:
            raise ValueError(f"TRENDING_ROLLOUT_RAMP {self.ramp!r} must be percents separated by commas, e.g. "
                             "'1,5,25,50'") from None
        return RolloutPolicy(ramp=ramp, approval=self.approval, min_users_per_step=self.min_users_per_step,
                             shadow_min_requests=self.shadow_min_requests, mde=self.mde,
                             max_ab_days=self.max_ab_days)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"rollout_settings": RolloutSettings()})

"""The retraining policy every trigger shares: cooldown, volume threshold, which families a retrain trains.

Defaults suit production on one machine; each can be set from the environment of the daemon and code server
(``TRENDING_RETRAIN_COOLDOWN_HOURS``, ``TRENDING_RETRAIN_MIN_NEW``, ``TRENDING_RETRAIN_FAMILIES``), which is how
the demo squeezes six weeks into minutes without changing code.
"""

import os

import dagster as dg
from pydantic import Field, field_validator

from trending_assets.lib.genre_model import FAMILIES, check_family


def env_default(name: str, default: str):
    """A default read when the resource is built (not when this module is imported)."""
    return Field(default_factory=lambda: os.environ.get(name, default), validate_default=True)


class RetrainPolicy(dg.ConfigurableResource):
    cooldown_hours: float = env_default("TRENDING_RETRAIN_COOLDOWN_HOURS", "24")
    min_new_labeled: int = env_default("TRENDING_RETRAIN_MIN_NEW", "500")
    families: str = env_default("TRENDING_RETRAIN_FAMILIES", ",".join(FAMILIES))
    lock_wait_s: float = 20.0  # a sensor waits this long for the warehouse, then tries again next tick

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: str) -> str:
        for family in value.split(","):
            try:
                check_family(family.strip())
            except ValueError as error:
                raise ValueError(f"{error} (set TRENDING_RETRAIN_FAMILIES to a comma-separated list, e.g. "
                                 f"'{','.join(FAMILIES)}')") from None
        return value

    @field_validator("cooldown_hours")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"cooldown_hours must be 0 or more; got {value} (TRENDING_RETRAIN_COOLDOWN_HOURS)")
        return value

    def family_list(self) -> list[str]:
        return [family.strip() for family in self.families.split(",")]


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"retrain_policy": RetrainPolicy()})

"""The simulated world behind the Trending Now reference app: a scraper's landing files, and the truth behind them.

``simulate(home, start, days, scenario=...)`` writes one movies, reviews and feedback JSON Lines file per day
into the landing zone, and records what a model must never see (true genres, user tastes, drift dates) under
``home.ground_truth``. See ``scenarios.py`` for what each scenario changes.
"""

from trending_assets.lib.simulator.scenarios import SCENARIOS
from trending_assets.lib.simulator.simulation import SimulationSummary, simulate

__all__ = ["SCENARIOS", "SimulationSummary", "simulate"]

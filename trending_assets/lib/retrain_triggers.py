"""Why a retrain is requested and whether it may start: the rules every trigger shares.

A ``Trigger`` says what asked (schedule, volume, drift, performance, manual), in a sentence and with the numbers
behind it. Before a retrain starts, ``decide`` applies the shared rules in order:

1. dedupe: one retrain in flight at a time; a second request is refused, manual or not, since two retrains of one
   model would race to register and promote.
2. cooldown: no retrain within ``cooldown_hours`` of the last one that started, so a drift alarm that stays red
   does not retrain every sensor tick. A manual request bypasses it: a person asked on purpose.

The volume trigger's own rule (enough new labeled movies since the champion's window) is ``volume_decision``.
Every request and its decision is kept in ``ml.retraining_log`` (``lib/retraining_log.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

SCHEDULE, VOLUME, DRIFT, PERFORMANCE, MANUAL = "schedule", "volume", "drift", "performance", "manual"
KINDS: tuple[str, ...] = (SCHEDULE, VOLUME, DRIFT, PERFORMANCE, MANUAL)


@dataclass(frozen=True)
class Trigger:
    """One request to retrain: its ``kind`` (one of ``KINDS``), a one-sentence ``reason``, the ``evidence`` that
    backs it (e.g. {"psi": {...}} or {"f1_drop": 0.08}), when it was requested (UTC) and who asked (a sensor's
    name, a schedule's, or a person's)."""

    kind: str
    reason: str
    requested_at: datetime
    actor: str
    evidence: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown trigger kind {self.kind!r}; expected one of: {', '.join(KINDS)}")
        if not self.reason.strip():
            raise ValueError("a trigger needs a reason: say in a sentence why a retrain is requested")


@dataclass(frozen=True)
class Decision:
    """Whether the retrain runs, and why, in a sentence with the numbers."""

    run: bool
    reason: str


def dedupe(in_flight_run_id: str | None) -> Decision:
    """Refuse while another retrain (``in_flight_run_id``) is still running, whatever asked."""
    if in_flight_run_id is not None:
        return Decision(False, f"retrain run {in_flight_run_id} is still in flight; one retrain runs at a time")
    return Decision(True, "no retrain is in flight")


def cooldown(trigger: Trigger, last_started_at: datetime | None, cooldown_hours: float) -> Decision:
    """Refuse a non-manual trigger that comes less than ``cooldown_hours`` after the last retrain started.

    Exactly ``cooldown_hours`` after it is allowed.
    """
    if last_started_at is None:
        return Decision(True, "no retrain has started before")
    elapsed = trigger.requested_at - last_started_at
    hours = elapsed / timedelta(hours=1)
    if trigger.kind == MANUAL:
        return Decision(True, f"manual request bypasses the {cooldown_hours:g} h cooldown "
                              f"(last retrain started {hours:.1f} h earlier)")
    if elapsed < timedelta(hours=cooldown_hours):
        allowed_at = last_started_at + timedelta(hours=cooldown_hours)
        return Decision(False, f"the last retrain started {hours:.1f} h earlier, within the {cooldown_hours:g} h "
                               f"cooldown; the next may start at {allowed_at:%Y-%m-%d %H:%M} UTC")
    return Decision(True, f"the last retrain started {hours:.1f} h earlier, outside the {cooldown_hours:g} h cooldown")


def decide(
    trigger: Trigger, *, in_flight_run_id: str | None, last_started_at: datetime | None, cooldown_hours: float
) -> Decision:
    """Apply dedupe, then cooldown; the first refusal decides, otherwise the retrain runs, and the reason says why
    both rules allowed it (e.g. that a manual request bypassed the cooldown)."""
    verdicts = (dedupe(in_flight_run_id), cooldown(trigger, last_started_at, cooldown_hours))
    for verdict in verdicts:
        if not verdict.run:
            return verdict
    return Decision(True, f"{trigger.kind} trigger accepted: " + "; ".join(v.reason for v in verdicts))


def volume_decision(new_labeled_movies: int, min_new: int, window_built: datetime | date | None) -> Decision:
    """Request a retrain when at least ``min_new`` labeled movies arrived after the champion's window was built
    (``window_built``; None when there is no champion yet, so any labeled data is new)."""
    if min_new < 1:
        raise ValueError(f"min_new is a number of movies, so at least 1; got {min_new!r}")
    since = f"since the champion's window was built ({window_built:%Y-%m-%d})" if window_built else "with no champion yet"
    if new_labeled_movies >= min_new:
        return Decision(True, f"{new_labeled_movies} new labeled movies {since}, at least the {min_new} required")
    return Decision(False, f"only {new_labeled_movies} new labeled movies {since}; {min_new} are required")

"""Deterministic synthetic traffic: weeks of normal use, then DESIGN's "deep analysis" incident."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

# (feature, model, typical input tokens, typical output tokens, share of normal calls)
NORMAL_MIX = (
    ("chat", "claude-haiku-4-5", 900, 250, 0.45),
    ("chat", "gpt-4o-mini", 700, 200, 0.15),
    ("code-generation", "claude-sonnet-4-5", 2_500, 700, 0.20),
    ("data-analysis", "gpt-4.1", 3_500, 500, 0.12),
    ("admin", "gpt-4o-mini", 400, 60, 0.08),
)
INCIDENT_FEATURE = "deep-analysis"
INCIDENT_MODEL = "claude-opus-4-1"
INCIDENT_INPUT_TOKENS = 50_000


@dataclass(frozen=True)
class Call:
    at: datetime
    user_id: str
    feature: str
    model: str
    input_tokens: int
    max_tokens: int
    incident: bool = False
    outside: bool = False  # sent to the provider with its key directly, never through costbrake


@dataclass(frozen=True)
class TrafficShape:
    users: int = 300
    days: int = 14
    calls_per_user_per_day: float = 3.0
    power_users: int = 5  # the incident's heavy users
    power_user_calls_per_day: int = 40  # "dozens of times a day"
    runaway_calls_per_day: int = 210  # the one user behind most of the bill (847 calls in 4 days)
    incident_days: int = 4
    seed: int = 7
    # The seeds' literal case: a script runs the same analysis on the provider key directly, outside the gateway.
    outside_calls_per_hour: int = 6
    outside_starts_after_hours: float = 1.0


def _hour_weight(hour: int) -> float:
    """A working-day rhythm: quiet at night, peaks late morning and mid-afternoon (UTC)."""
    return 0.15 + math.exp(-((hour - 10.5) ** 2) / 8) + 0.8 * math.exp(-((hour - 15) ** 2) / 6)


def normal_calls(shape: TrafficShape, start: datetime) -> Iterator[Call]:
    rng = random.Random(shape.seed)
    weights = [_hour_weight(h) for h in range(24)]
    total_weight = sum(weights)
    activity = [rng.lognormvariate(0, 0.6) for _ in range(shape.users)]  # some users use it more than others
    mix_weights = [share for *_, share in NORMAL_MIX]
    for day in range(shape.days):
        weekend = (start + timedelta(days=day)).weekday() >= 5
        for hour in range(24):
            expected = shape.users * shape.calls_per_user_per_day * weights[hour] / total_weight
            expected *= 0.5 if weekend else 1.0
            for _ in range(_poisson(rng, expected)):
                user = rng.choices(range(shape.users), weights=activity)[0]
                feature, model, tokens_in, tokens_out, _ = rng.choices(NORMAL_MIX, weights=mix_weights)[0]
                at = start + timedelta(days=day, hours=hour, seconds=rng.uniform(0, 3599))
                yield Call(
                    at=at,
                    user_id=f"user-{user:04d}",
                    feature=feature,
                    model=model,
                    input_tokens=max(20, int(rng.lognormvariate(math.log(tokens_in), 0.5))),
                    max_tokens=max(64, int(tokens_out * 2)),
                )


def incident_calls(shape: TrafficShape, start: datetime) -> Iterator[Call]:
    """A new feature sends whole documents to an expensive model; a few power users run it all day."""
    rng = random.Random(shape.seed + 1)
    for day in range(shape.incident_days):
        for user in range(shape.power_users):
            per_day = shape.runaway_calls_per_day if user == 0 else shape.power_user_calls_per_day
            for _ in range(per_day):
                offset = timedelta(days=day, hours=rng.uniform(7, 23) if user else rng.uniform(0, 24))
                yield Call(
                    at=start + offset,
                    user_id=f"power-{user}",
                    feature=INCIDENT_FEATURE,
                    model=INCIDENT_MODEL,
                    input_tokens=int(rng.uniform(0.8, 1.2) * INCIDENT_INPUT_TOKENS),
                    max_tokens=4_096,
                    incident=True,
                )


def outside_calls(shape: TrafficShape, start: datetime) -> Iterator[Call]:
    """Calls on the provider key that never pass through costbrake, from ``outside_starts_after_hours`` into the
    incident to its end: only the provider's own usage and cost reports show them."""
    rng = random.Random(shape.seed + 2)
    first = start + timedelta(hours=shape.outside_starts_after_hours)
    hours = int(shape.incident_days * 24 - shape.outside_starts_after_hours)
    for hour in range(hours):
        for _ in range(shape.outside_calls_per_hour):
            yield Call(
                at=first + timedelta(hours=hour, seconds=rng.uniform(0, 3599)),
                user_id="batch-script",
                feature=INCIDENT_FEATURE,
                model=INCIDENT_MODEL,
                input_tokens=int(rng.uniform(0.8, 1.2) * INCIDENT_INPUT_TOKENS),
                max_tokens=4_096,
                outside=True,
            )


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of one hour of one deployment.
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# A replay small enough for CI: still more than a day of history before the incident (the z-score needs 24 h).
QUICK_SHAPE = TrafficShape(
    users=40,
    days=3,
    calls_per_user_per_day=2.0,
    power_users=3,
    power_user_calls_per_day=20,
    runaway_calls_per_day=120,
    incident_days=1,
)

"""Each anomaly rule fires on a crafted series and stays silent on normal noise."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from costbrake.pipeline.anomaly import (
    AnomalyConfig,
    AnomalyType,
    Severity,
    Spender,
    SpendView,
    detect,
)

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # half-way through the hour; November has 30 days
HOUR_START = NOW.replace(minute=0)
HOUR = timedelta(hours=1)
GLOBAL_BUDGET = Decimal(10_000)  # daily global budget $333.33, so a user spike is > $3.33 in an hour
SHARES = {"chat": Decimal("0.40"), "code-generation": Decimal("0.30"), "data-analysis": Decimal("0.20")}
SHARES["admin"] = Decimal(1) - sum(SHARES.values())
NORMAL_DAILY_USD = 200  # 60% of the budget over a month: nothing should run out
CONFIG = AnomalyConfig()


def money(value: float) -> Decimal:
    return Decimal(str(round(value, 6)))


def hours_back(count: int) -> list[datetime]:
    """The ``count`` complete hours before the current one, oldest first, then the current hour."""
    return [HOUR_START - n * HOUR for n in range(count, 0, -1)] + [HOUR_START]


def rhythm(when: datetime) -> float:
    """Quiet nights, busy afternoons (UTC): the daily shape of a team's traffic."""
    return 1 + 0.6 * math.sin(2 * math.pi * (when.hour - 8) / 24)


def normal_view(seed: int, hours_ago: int = 0, minutes_into_hour: int = 30) -> SpendView:
    """15 days of noisy daily rhythm per feature, judged ``hours_ago`` hours before NOW's hour.

    A month on track (60% of the budget) and fifty users sharing the current hour.
    """
    rng = random.Random(seed)
    now = HOUR_START - hours_ago * HOUR + timedelta(minutes=minutes_into_hour)
    current_hour = HOUR_START - hours_ago * HOUR
    hourly: dict[str, dict[datetime, Decimal]] = {scope: {} for scope in ["global", *(f"feature#{f}" for f in SHARES)]}
    for when in hours_back(15 * 24):
        total = Decimal(0)
        for feature, share in SHARES.items():
            expected = NORMAL_DAILY_USD / 24 * float(share) * rhythm(when)
            cost = money(expected * rng.uniform(0.6, 1.4))
            hourly[f"feature#{feature}"][when] = cost
            total += cost
        hourly["global"][when] = total
    elapsed = Decimal(minutes_into_hour) / 60
    visible = {
        scope: {when: cost * elapsed if when == current_hour else cost for when, cost in series.items()}
        for scope, series in hourly.items()
    }
    visible = {scope: {w: c for w, c in series.items() if w <= current_hour} for scope, series in visible.items()}
    days_elapsed = Decimal(now.day - 1) + Decimal(now.hour * 60 + now.minute) / 1440
    global_mtd = money(NORMAL_DAILY_USD * rng.uniform(0.9, 1.1)) * days_elapsed
    month_to_date = {"global": global_mtd}
    for feature, share in SHARES.items():
        month_to_date[f"feature#{feature}"] = money(float(global_mtd * share) * rng.uniform(0.9, 1.1))
    hour_cost = visible["global"][current_hour]
    weights = [rng.random() for _ in range(50)]
    users = {f"u{i}": money(float(hour_cost) * w / sum(weights)) for i, w in enumerate(weights)}
    return SpendView(
        now=now,
        hourly_cost=visible,
        user_hour_cost=users,
        month_to_date=month_to_date,
        monthly_budgets={"global": GLOBAL_BUDGET} | {f"feature#{f}": GLOBAL_BUDGET * s for f, s in SHARES.items()},
        month_top_users=(Spender("u1", Decimal(40)), Spender("u2", Decimal(30))),
    )


def with_hour(view: SpendView, scope: str, when: datetime, cost: Decimal) -> SpendView:
    hourly = {name: dict(series) for name, series in view.hourly_cost.items()}
    hourly.setdefault(scope, {})[when] = cost
    return replace(view, hourly_cost=hourly)


def flat_view(scope: str, hours: int, per_hour: Decimal, current: Decimal) -> SpendView:
    series = {when: per_hour for when in hours_back(hours)}
    series[HOUR_START] = current
    return SpendView(NOW, {scope: series}, {}, {}, {})


def of_type(view: SpendView, kind: AnomalyType, config: AnomalyConfig = CONFIG) -> list:
    return [a for a in detect(view, config) if a.type is kind]


@pytest.mark.parametrize("seed", range(20))
def test_given_normal_noisy_daily_rhythm_over_14_days_when_each_hour_of_a_day_is_judged_then_nothing_fires(seed):
    # Each hour judged complete (59 minutes in), busy afternoon peaks included.
    fired = [a for hours_ago in range(24) for a in detect(normal_view(seed, hours_ago, 59), CONFIG)]

    assert fired == []


def test_given_current_hour_ten_times_the_usual_when_detected_then_zscore_fires_naming_top_spenders():
    view = normal_view(1)
    spike = Decimal(90)
    view = with_hour(view, "feature#data-analysis", HOUR_START, spike)
    view = with_hour(view, "global", HOUR_START, view.hourly_cost["global"][HOUR_START] + spike)
    view = replace(view, user_hour_cost={**view.user_hour_cost, "mallory": Decimal("2.5")})

    found = {a.scope: a for a in of_type(view, AnomalyType.ZSCORE)}

    assert set(found) == {"global", "feature#data-analysis"}
    anomaly = found["feature#data-analysis"]
    assert anomaly.window.key == "h#2026-11-24T10"
    assert anomaly.current == spike and anomaly.limit is not None and anomaly.limit < spike
    assert Decimal(anomaly.details["zscore"]) > 3
    assert anomaly.details["baseline_hours"] == "336"
    assert anomaly.top_features[0] == Spender("data-analysis", spike)
    assert anomaly.top_users[0].name == "mallory"


@pytest.mark.parametrize(("history_hours", "fires"), [(23, False), (24, True)])
def test_given_short_history_when_hour_spikes_then_zscore_needs_24_hours_of_history(history_hours, fires):
    view = flat_view("global", history_hours, Decimal("2"), current=Decimal(500))

    assert bool(of_type(view, AnomalyType.ZSCORE)) is fires


@pytest.mark.parametrize(
    ("current", "fires"), [(Decimal("0.40"), False), (Decimal("2.99"), False), (Decimal(50), True)]
)
def test_given_flat_zero_history_when_an_hour_costs_something_then_only_a_large_hour_fires(current, fires):
    view = flat_view("feature#chat", 48, Decimal(0), current=current)

    assert bool(of_type(view, AnomalyType.ZSCORE)) is fires


@pytest.mark.parametrize(
    ("current", "fires"), [(Decimal("10.50"), False), (Decimal("12.90"), False), (Decimal(14), True)]
)
def test_given_steady_ten_dollars_an_hour_when_next_hour_differs_then_stddev_floor_decides(current, fires):
    view = flat_view("global", 72, Decimal(10), current=current)

    assert bool(of_type(view, AnomalyType.ZSCORE)) is fires


def test_given_spike_on_a_model_scope_when_detected_then_zscore_judges_only_global_and_features():
    view = flat_view("model#gpt-4o", 72, Decimal(1), current=Decimal(500))

    assert of_type(view, AnomalyType.ZSCORE) == []


@pytest.mark.parametrize(("cost", "fires"), [(Decimal("3.33"), False), (Decimal("3.34"), True)])
def test_given_one_user_near_one_percent_of_daily_budget_in_an_hour_when_detected_then_spike_above_it(cost, fires):
    view = replace(normal_view(2), user_hour_cost={**normal_view(2).user_hour_cost, "mallory": cost})

    found = of_type(view, AnomalyType.USER_SPIKE)

    assert [a.scope for a in found] == (["user#mallory"] if fires else [])
    if fires:
        assert found[0].severity is Severity.CRITICAL
        assert found[0].limit == GLOBAL_BUDGET / 30 / 100
        assert found[0].top_users[0] == Spender("mallory", cost)


@pytest.mark.parametrize(
    ("utilization", "threshold", "severity"),
    [("0.79", None, None), ("0.80", 80, Severity.WARNING), ("0.93", 90, Severity.WARNING),
     ("0.96", 95, Severity.CRITICAL), ("1.01", 100, Severity.CRITICAL)],
)  # fmt: skip
def test_given_month_to_date_spend_when_detected_then_highest_crossed_threshold_alerts(
    utilization, threshold, severity
):
    view = normal_view(3)
    budget = view.monthly_budgets["feature#chat"]
    view = replace(view, month_to_date={**view.month_to_date, "feature#chat": budget * Decimal(utilization)})

    found = [a for a in of_type(view, AnomalyType.BUDGET_THRESHOLD) if a.scope == "feature#chat"]

    assert [(a.threshold_pct, a.severity) for a in found] == ([] if threshold is None else [(threshold, severity)])
    if found:
        assert found[0].window.key == "m#2026-11"
        assert found[0].dedup_key == f"budget_threshold#feature#chat#m#2026-11#{threshold}"


def test_given_global_budget_at_ninety_percent_when_detected_then_global_threshold_alerts_with_top_spenders():
    view = normal_view(4)
    view = replace(view, month_to_date={**view.month_to_date, "global": Decimal(9_050)})

    [anomaly] = [a for a in of_type(view, AnomalyType.BUDGET_THRESHOLD)]

    assert (anomaly.scope, anomaly.threshold_pct, anomaly.utilization) == ("global", 90, Decimal("0.905"))
    assert [s.name for s in anomaly.top_users] == ["u1", "u2"]
    assert anomaly.top_features[0].name == "chat"


@pytest.mark.parametrize(("chat_share", "fires"), [("0.47", False), ("0.50", True)])
def test_given_feature_taking_more_of_the_spend_than_its_share_when_detected_then_above_120_percent_alerts(
    chat_share, fires
):
    view = normal_view(5)
    global_mtd = view.month_to_date["global"]
    view = replace(view, month_to_date={**view.month_to_date, "feature#chat": global_mtd * Decimal(chat_share)})

    found = of_type(view, AnomalyType.FEATURE_SHARE)

    assert [a.scope for a in found] == (["feature#chat"] if fires else [])
    if fires:
        assert found[0].utilization == Decimal(chat_share) / Decimal("0.40")
        assert found[0].window.key == "d#2026-11-24"


def test_given_few_dollars_spent_early_in_the_month_when_mix_is_skewed_then_feature_share_stays_silent():
    view = normal_view(5)
    view = replace(view, month_to_date={"global": Decimal(400), "feature#admin": Decimal(300)})

    assert of_type(view, AnomalyType.FEATURE_SHARE) == []


def two_weeks(previous_per_hour: Decimal, last_per_hour: Decimal) -> SpendView:
    series = {when: previous_per_hour for when in hours_back(14 * 24)[:168]}
    series |= {when: last_per_hour for when in hours_back(7 * 24)}
    return SpendView(NOW, {"feature#chat": series}, {}, {}, {})


@pytest.mark.parametrize(("last_week", "fires"), [(Decimal("1.30"), False), (Decimal("1.60"), True)])
def test_given_week_over_week_growth_when_detected_then_growth_above_50_percent_alerts(last_week, fires):
    found = of_type(two_weeks(Decimal(1), last_week), AnomalyType.TREND_GROWTH)

    assert [a.scope for a in found] == (["feature#chat"] if fires else [])
    if fires:
        assert found[0].details["growth"] == "0.6"
        assert found[0].current == 168 * last_week


def test_given_less_than_two_weeks_of_history_when_spend_doubles_then_growth_stays_silent():
    view = two_weeks(Decimal(1), Decimal(3))
    series = {when: cost for when, cost in view.hourly_cost["feature#chat"].items() if when > NOW - timedelta(days=13)}

    assert of_type(replace(view, hourly_cost={"feature#chat": series}), AnomalyType.TREND_GROWTH) == []


def runout_view(per_hour: Decimal, month_to_date: Decimal) -> SpendView:
    series = {when: per_hour for when in hours_back(48)}
    series[HOUR_START] = per_hour / 2  # half an hour at the same rate
    return SpendView(NOW, {"global": series}, {}, {"global": month_to_date}, {"global": GLOBAL_BUDGET})


def test_given_run_rate_that_exhausts_the_budget_before_month_end_when_detected_then_runout_projected():
    view = runout_view(Decimal(40), month_to_date=Decimal(6_000))  # $960/day, $4,000 left: about 4.2 days

    [anomaly] = of_type(view, AnomalyType.TREND_RUNOUT)

    assert anomaly.severity is Severity.WARNING
    assert anomaly.details["run_rate_usd_per_day"] == "960"
    assert anomaly.details["hours_left"] == "100.0"
    assert anomaly.details["projected_runout_at"] == "2026-11-28T14:30:00+00:00"
    assert "2026-11-28 14:30" in anomaly.summary


def test_given_runout_within_three_days_when_detected_then_critical():
    [anomaly] = of_type(runout_view(Decimal(40), month_to_date=Decimal(8_000)), AnomalyType.TREND_RUNOUT)

    assert anomaly.severity is Severity.CRITICAL


@pytest.mark.parametrize("per_hour", [Decimal(30), Decimal("0.0000001")])
def test_given_run_rate_that_lasts_the_month_when_detected_then_no_runout(per_hour):
    # $5,000 left for 6.56 days: at $720/day that is $4,723; at a trickle it lasts for ages.
    assert of_type(runout_view(per_hour, month_to_date=Decimal(5_000)), AnomalyType.TREND_RUNOUT) == []


def test_given_the_story_deep_analysis_launch_when_replayed_hourly_then_caught_in_its_first_hour():
    """$38,000 in 4 days is ~$396/hour; one power user spent $2,200 of it (~$23/hour)."""
    view = normal_view(6)
    view = with_hour(view, "feature#deep-analysis", HOUR_START, Decimal(396))
    view = with_hour(view, "global", HOUR_START, view.hourly_cost["global"][HOUR_START] + Decimal(396))
    view = replace(view, user_hour_cost={**view.user_hour_cost, "power-user": Decimal(23)})

    kinds = {(a.type, a.scope) for a in detect(view, CONFIG)}

    assert (AnomalyType.ZSCORE, "global") in kinds
    assert (AnomalyType.USER_SPIKE, "user#power-user") in kinds
    # A brand-new feature has no history of its own: the global series is what catches it.
    assert (AnomalyType.ZSCORE, "feature#deep-analysis") not in kinds


def test_given_custom_thresholds_when_detected_then_config_is_honoured():
    view = flat_view("global", 72, Decimal(10), current=Decimal(14))
    relaxed = replace(CONFIG, zscore_threshold=Decimal(5))

    assert of_type(view, AnomalyType.ZSCORE) != []
    assert of_type(view, AnomalyType.ZSCORE, relaxed) == []

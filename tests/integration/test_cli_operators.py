"""The operator CLI against the running local stack, as an operator runs it (the env `costbrake local` prints).

Traffic is seeded through the official SDKs; the CLI's numbers are checked against the call records (and the
`x-costbrake-cost-usd` header each response carried), projections recomputed here from the same records.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import anthropic
import boto3
import openai
import pytest
from costbrake.dal.rollups import RollupStore
from costbrake.dal.tables import Tables
from costbrake.projection import Projection, project, run_rate_per_day
from costbrake.records import CallRecord
from costbrake.windows import Window, WindowSpan, span
from support.eventually import eventually

PROMPT = [{"role": "user", "content": "How much did that answer cost?"}]
ROLLUP_DEADLINE_SECONDS = 15


@pytest.fixture
def feature() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}"


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def calls(stack, openai_client, anthropic_client) -> Callable[..., list[CallRecord]]:
    """``calls(secret, model, n, max_tokens)``: n SDK calls; their call records, costs checked against headers."""

    def make(secret: str, model: str, n: int = 1, max_tokens: int = 40) -> list[CallRecord]:
        records = []
        for _ in range(n):
            if model.startswith("claude"):
                raw: Any = anthropic_client(secret).messages.with_raw_response.create(
                    model=model, max_tokens=max_tokens, messages=PROMPT
                )
            else:
                raw = openai_client(secret).chat.completions.with_raw_response.create(
                    model=model, messages=PROMPT, max_tokens=max_tokens
                )
            record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
            assert record is not None and record.cost_usd == Decimal(raw.headers["x-costbrake-cost-usd"]) > 0
            records.append(record)
        return records

    return make


def wait_for_rollups(stack, expected_calls: dict[str, list[CallRecord]]) -> None:
    """Until the stream pipeline has rolled up every call of each scope (daily rollups), or fail."""
    store = RollupStore.of(Tables.connect(stack.settings), stack.settings)

    def missing() -> dict[str, tuple[int, int]]:
        """(rolled up, expected) calls of each scope not complete yet."""
        gaps = {}
        for scope, records in expected_calls.items():
            days = {span(Window.DAY, r.timestamp).key for r in records}
            counted = sum(t.calls for t in store.rollups_for(scope, days).values())
            if counted != len(records):
                gaps[scope] = (counted, len(records))
        return gaps

    eventually(missing, until=lambda gaps: not gaps, timeout=ROLLUP_DEADLINE_SECONDS, interval=0.2, what="rollups")


def cost(records: Iterable[CallRecord]) -> Decimal:
    return sum((r.cost_usd for r in records), Decimal(0))


def spent_in(records: Iterable[CallRecord], window: WindowSpan) -> Decimal:
    return cost(r for r in records if window.start <= r.timestamp < window.end)


def expected_projection(records: list[CallRecord], limit: Decimal, window: WindowSpan, now: datetime) -> Projection:
    """The status projection recomputed from the call records: the trailing day's cost (every call here is
    minutes old) per day of the time since the start of the first call's hour, to the window's end."""
    first_hour = min(span(Window.HOUR, r.timestamp).start for r in records)
    rate = run_rate_per_day(cost(records), now - first_hour)
    return project(spent_in(records, window), limit, rate, now, window.end)


def assert_standing(row: dict[str, Any], limit: Decimal, spent: Decimal, expected: Projection) -> None:
    assert Decimal(row["limit_usd"]) == limit
    assert Decimal(row["spent_usd"]) == spent and Decimal(row["reserved_usd"]) == 0
    assert Decimal(row["remaining_usd"]) == max(Decimal(0), limit - spent)
    assert Decimal(row["utilization"]) == spent / limit
    assert Decimal(row["run_rate_usd_per_day"]) == expected.rate_usd_per_day
    assert Decimal(row["projected_usd"]) == expected.projected_usd
    assert row["exhausted"] is (spent >= limit)
    assert row["runs_out_at"] == (expected.exhausted_at.isoformat() if expected.exhausted_at else None)


@pytest.fixture
def alert_queue(stack) -> Callable[..., dict[str, Any]]:
    """An SQS queue subscribed to the alert topic; ``find(type, scope, **details)`` waits for such an alert."""
    sqs = boto3.client("sqs", endpoint_url=stack.moto.url, region_name=stack.settings.aws_region)
    sns = boto3.client("sns", endpoint_url=stack.moto.url, region_name=stack.settings.aws_region)
    url = sqs.create_queue(QueueName=f"cli-alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.settings.alert_topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    received: list[dict[str, Any]] = []

    def find(type_: str, scope: str, **details: str) -> dict[str, Any]:
        def matching(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                a
                for a in alerts
                if a["type"] == type_ and a["scope"] == scope and details.items() <= a["details"].items()
            ]

        def receive() -> list[dict[str, Any]]:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                received.append(json.loads(message["Body"]))
            return received

        eventually(receive, until=matching, timeout=5, interval=0.1, what=f"a {type_} alert about {scope}")
        return matching(received)[-1]

    return find


# ---- status ---------------------------------------------------------------------------------------


def test_given_seeded_traffic_when_status_then_each_budget_shows_the_records_spend_and_projection_worst_first(
    cli, stack, make_key, calls, feature
):
    heavy, light = new_user(), new_user()
    # Feature counters run while the feature has a budget: give it one now, the real one once the cost is known.
    cli("budgets", "set", "--feature", feature, "--month", "1")
    stack.gateway.forget_cached()  # the gateway reads the change now, not after its cache time
    heavy_calls = calls(make_key(heavy, feature=feature), "gpt-4o-mini", n=3, max_tokens=60)
    light_calls = calls(make_key(light, feature=feature), "claude-haiku-4-5", n=1, max_tokens=30)
    feature_calls = heavy_calls + light_calls
    wait_for_rollups(stack, {f"user#{heavy}": heavy_calls, f"user#{light}": light_calls})
    # 1% left: at the run rate of these minutes (a day's worth per hour at most) it runs out within about a minute.
    feature_limit = cost(feature_calls) * Decimal("1.01")
    heavy_day_limit = cost(heavy_calls) / 2  # exhausted already
    cli("budgets", "set", "--feature", feature, "--month", format(feature_limit, "f"))
    cli("budgets", "set", "--user", heavy, "--day", format(heavy_day_limit, "f"))

    status = cli.json("status", "--users", "100000")

    now = datetime.fromisoformat(status["as_of"])
    month, day = span(Window.MONTH, now), span(Window.DAY, now)
    rows = {(row["scope"], row["window"]): row for row in status["budgets"]}
    order = [(row["scope"], row["window"]) for row in status["budgets"]]
    feature_row = rows[(f"feature#{feature}", "month")]
    feature_projection = expected_projection(feature_calls, feature_limit, month, now)
    assert_standing(feature_row, feature_limit, cost(feature_calls), feature_projection)
    heavy_day = rows[(f"user#{heavy}", "day")]
    assert_standing(
        heavy_day,
        heavy_day_limit,
        spent_in(heavy_calls, day),
        expected_projection(heavy_calls, heavy_day_limit, day, now),
    )
    assert heavy_day["exhausted"] and heavy_day["runs_out_at"] == now.isoformat()
    light_month = rows[(f"user#{light}", "month")]  # the free tier's $50
    assert_standing(
        light_month, Decimal(50), cost(light_calls), expected_projection(light_calls, Decimal(50), month, now)
    )
    assert light_month["runs_out_at"] is None
    assert {(f"user#{light}", "hour"), (f"user#{light}", "day"), (f"user#{heavy}", "month")} <= set(rows)
    assert Decimal(rows[("global", "month")]["spent_usd"]) >= cost(feature_calls)
    by_cost = sorted([(heavy, heavy_calls), (light, light_calls)], key=lambda pair: -cost(pair[1]))
    assert [u for u in status["users"] if u in (heavy, light)] == [user for user, _ in by_cost]
    # Worst first: the exhausted day, then the feature that runs out this month, then what lasts its window.
    assert feature_projection.exhausted_at is not None or month.end - now < timedelta(minutes=2)
    assert order.index((f"user#{heavy}", "day")) < order.index((f"feature#{feature}", "month"))
    assert order.index((f"feature#{feature}", "month")) < order.index((f"user#{light}", "month"))


# ---- top ------------------------------------------------------------------------------------------


def test_given_seeded_traffic_when_top_then_users_features_and_models_sum_the_records_with_shares(
    cli, stack, make_key, calls, feature
):
    big, small = new_user(), new_user()
    # Models no other test uses, so their totals are this test's calls.
    big_calls = calls(make_key(big, feature=feature), "claude-sonnet-4-20250514", n=2, max_tokens=50)
    small_calls = calls(make_key(small, feature=feature), "gpt-4.1-nano", n=3, max_tokens=20)
    wait_for_rollups(stack, {f"user#{big}": big_calls, f"user#{small}": small_calls})

    top_users = cli.json("top", "users", "--days", "2", "--limit", "100000")
    top_features = cli.json("top", "features", "--days", "2", "--limit", "100000")
    top_models = cli.json("top", "models", "--days", "2", "--limit", "100000")
    just_one = cli.json("top", "users", "--days", "2", "--limit", "1")

    for listing, name, records in [
        (top_users["users"], big, big_calls),
        (top_users["users"], small, small_calls),
        (top_features["features"], feature, big_calls + small_calls),
        (top_models["models"], "claude-sonnet-4-20250514", big_calls),
        (top_models["models"], "gpt-4.1-nano", small_calls),
    ]:
        row = next(row for row in listing if row["name"] == name)
        assert Decimal(row["cost_usd"]) == cost(records) and row["calls"] == len(records)
        assert row["input_tokens"] == sum(r.input_tokens for r in records)
        assert row["output_tokens"] == sum(r.output_tokens for r in records)
    for top in (top_users, top_features, top_models):
        listing = top[top["dimension"]]
        costs = [Decimal(row["cost_usd"]) for row in listing]
        assert costs == sorted(costs, reverse=True)  # most expensive first
        assert all(Decimal(row["share"]) == Decimal(row["cost_usd"]) / Decimal(top["total_usd"]) for row in listing)
        assert sum(costs) == Decimal(top["total_usd"]) and sum(row["calls"] for row in listing) == top["total_calls"]
    assert just_one["users"] == top_users["users"][:1]


# ---- users ----------------------------------------------------------------------------------------


def test_given_user_when_show_set_tier_block_and_unblock_then_limits_standing_and_refusals_follow(
    cli, stack, calls, alert_queue, openai_client
):
    user = new_user()
    secret = cli("keys", "create", "--user", user, "--tier", "pro", "--name", "laptop").strip()
    records = calls(secret, "gpt-4o-mini", n=2)
    wait_for_rollups(stack, {f"user#{user}": records})

    shown = cli.json("users", "show", user)
    cli("users", "set-tier", user, "enterprise")
    moved = cli.json("users", "show", user)
    cli("users", "block", user, "--for", "1h", "--reason", "runaway loop", "--actor", "oncall")
    stack.gateway.forget_cached()
    with pytest.raises(openai.PermissionDeniedError, match=r"runaway loop \(oncall\)"):
        openai_client(secret).chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=5)
    blocked = cli.json("users", "show", user)
    block_alert = alert_queue("user_block", f"user#{user}", reason="runaway loop")
    cli("users", "unblock", user, "--reason", "loop fixed", "--actor", "oncall")
    stack.gateway.forget_cached()
    after = calls(secret, "gpt-4o-mini", n=1)

    assert shown["tier"] == "pro" and shown["blocked"] is False
    assert shown["limits"] == {"hour_usd": "5", "day_usd": "25", "month_usd": "250", "rpm": 60}
    assert set(shown["limit_sources"].values()) == {"tier pro"}
    assert [(k["name"], k["revoked"]) for k in shown["keys"]] == [("laptop", False)]
    budgets = {row["window"]: row for row in shown["budgets"]}
    assert [Decimal(budgets[w]["limit_usd"]) for w in ("hour", "day", "month")] == [5, 25, 250]
    assert Decimal(budgets["month"]["spent_usd"]) == cost(records)
    assert moved["tier"] == "enterprise" and moved["limits"]["month_usd"] == "1000"
    assert blocked["blocked"] is True and blocked["blocked_reason"] == "runaway loop (oncall)"
    assert datetime.fromisoformat(blocked["blocked_until"]) == datetime.fromisoformat(
        block_alert["details"]["blocked_until"]
    )
    assert block_alert["details"]["actor"] == "oncall" and block_alert["details"]["reason"] == "runaway loop"
    unblock_alert = alert_queue("user_block", f"user#{user}", reason="loop fixed")
    assert unblock_alert["details"]["blocked_until"] == "" and unblock_alert["severity"] == "info"
    assert len(after) == 1


def test_given_operator_mistakes_when_users_commands_then_clear_errors(cli):
    user = new_user()
    cli("keys", "create", "--user", user)

    assert "unknown user 'nobody-at-all'" in cli.fails("users", "show", "nobody-at-all").output
    assert "unknown tier 'gold'" in cli.fails("users", "set-tier", user, "gold").output
    assert "unknown user" in cli.fails("users", "set-tier", "nobody-at-all", "pro").output
    assert "exactly one of --for" in cli.fails("users", "block", user, "--reason", "x").output
    assert "not a duration" in cli.fails("users", "block", user, "--for", "soon", "--reason", "x").output
    assert "in the future" in cli.fails("users", "block", user, "--until", "2020-01-01", "--reason", "x").output
    assert "not blocked" in cli("users", "unblock", user, "--reason", "x")


# ---- keys -----------------------------------------------------------------------------------------


def test_given_cli_key_when_listed_and_revoked_then_sdk_is_refused_and_list_says_revoked(cli, stack, calls):
    user = new_user()
    created = cli.json("keys", "create", "--user", user, "--name", "ci job")
    calls(created["secret"], "gpt-4o-mini")

    listed = cli.json("keys", "list", "--user", user)
    out = cli("keys", "revoke", created["key_id"])
    stack.gateway.forget_cached()

    assert [(k["key_id"], k["name"], k["revoked"]) for k in listed] == [(created["key_id"], "ci job", False)]
    assert "revoked" in out
    with pytest.raises(openai.AuthenticationError):
        calls(created["secret"], "gpt-4o-mini")
    assert [k["revoked"] for k in cli.json("keys", "list", "--user", user)] == [True]
    assert cli.json("keys", "list", "--user", user, "--active") == []
    assert "already revoked" in cli("keys", "revoke", created["key_id"])
    assert "unknown key id 'no-such-key'" in cli.fails("keys", "revoke", "no-such-key").output
    assert "unknown tier" in cli.fails("keys", "create", "--user", user, "--tier", "gold").output


# ---- switches -------------------------------------------------------------------------------------


def test_given_cli_switch_off_when_sdk_calls_then_403_and_the_flip_is_listed_audited_and_announced(
    cli, stack, make_key, anthropic_client, feature, alert_queue
):
    secret = make_key(new_user(), feature=feature)

    assert "unknown feature" in cli.fails("switch", "set", feature, "off", "--reason", "typo?").output
    out = cli("switch", "set", feature, "off", "--reason", "cost incident", "--actor", "oncall", "--create")
    stack.gateway.forget_cached()

    assert "off" in out
    with pytest.raises(anthropic.PermissionDeniedError, match="cost incident"):
        anthropic_client(secret).messages.create(model="claude-haiku-4-5", max_tokens=5, messages=PROMPT)
    listed = {f["name"]: f for f in cli.json("switch", "list")}
    assert (listed[feature]["state"], listed[feature]["reason"]) == ("off", "cost incident")
    alert = alert_queue("switch_flip", f"feature#{feature}")
    assert alert["severity"] == "critical" and alert["details"]["actor"] == "oncall"
    assert (alert["details"]["previous_state"], alert["details"]["state"]) == ("on", "off")
    cli("switch", "set", feature, "on", "--reason", "incident over", "--actor", "lead")
    history = cli.json("switch", "history", feature)
    assert [(f["actor"], f["from"], f["to"], f["reason"]) for f in history["flips"]] == [
        ("oncall", "on", "off", "cost incident"),
        ("lead", "off", "on", "incident over"),
    ]
    assert "unknown feature" in cli.fails("switch", "history", f"{feature}-typo").output


# ---- budgets --------------------------------------------------------------------------------------


def test_given_cli_created_key_when_sdk_calls_then_budget_show_reports_the_spend(cli, openai_client, user_id):
    secret = cli("keys", "create", "--user", user_id, "--tier", "pro").strip()
    cli("budgets", "set", "--user", user_id, "--hour", "0.5", "--rpm", "100")

    openai_client(secret).chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=20)

    report = json.loads(cli("budget", "show", "--user", user_id, "--json"))
    hour = next(w for w in report["windows"] if w["window"] == "hour" and w["scope"] == f"user {user_id}")
    assert Decimal(hour["limit_usd"]) == Decimal("0.5")
    assert Decimal(hour["spent_usd"]) > 0 and Decimal(hour["reserved_usd"]) == 0
    assert report["tier"] == "pro" and report["requests_per_minute"] == 100


def test_given_budgets_set_when_shown_then_each_target_reports_its_limits_and_standing(
    cli, stack, make_key, calls, feature
):
    tier = f"tier-{uuid.uuid4().hex[:6]}"
    user = new_user()
    cli("budgets", "set", "--feature", feature, "--month", "12.5")  # its counters run from now on
    stack.gateway.forget_cached()
    records = calls(make_key(user, feature=feature), "gpt-4o-mini", n=2)
    wait_for_rollups(stack, {f"feature#{feature}": records})
    cli("budgets", "set", "--tier", tier, "--hour", "2", "--day", "8", "--rpm", "30")
    cli("budgets", "set", "--user", user, "--month", "7")

    everything = cli.json("budgets", "show")
    feature_budget = cli.json("budgets", "show", "--feature", feature)
    tier_limits = cli.json("budgets", "show", "--tier", tier)
    user_budget = cli.json("budgets", "show", "--user", user)
    global_budget = cli.json("budgets", "show", "--global")

    assert {"name": feature, "month_usd": "12.5"}.items() <= next(
        f for f in everything["features"] if f["name"] == feature
    ).items()
    assert {"name": tier, "hour_usd": "2", "day_usd": "8", "month_usd": None, "rpm": 30} in everything["tiers"]
    assert feature_budget["month_usd"] == "12.5" and Decimal(feature_budget["standing"]["spent_usd"]) == cost(records)
    assert tier_limits == {"scope": "tier", "name": tier, "hour_usd": "2", "day_usd": "8", "month_usd": None, "rpm": 30}
    assert user_budget["limits"]["month_usd"] == "7" and user_budget["limit_sources"]["month_usd"] == "user override"
    month = next(row for row in user_budget["budgets"] if row["window"] == "month")
    assert Decimal(month["spent_usd"]) == cost(records) and Decimal(month["limit_usd"]) == 7
    assert global_budget["month_usd"] == format(stack.settings.global_month_usd.normalize(), "f")
    assert Decimal(global_budget["standing"]["spent_usd"]) >= cost(records)
    assert "unknown tier" in cli.fails("budgets", "show", "--tier", f"{tier}-typo").output
    assert "at most one" in cli.fails("budgets", "show", "--user", user, "--tier", tier).output


def test_given_budgets_set_without_target_then_usage_error(cli):
    result = cli.fails("budgets", "set", "--hour", "1")

    assert result.exit_code == 2 and "exactly one" in result.output


# ---- keys name their features; keys have budgets; names are canonical ----------------------------------


def test_given_keys_create_with_features_when_sdk_calls_then_only_those_features_and_the_first_by_default(
    cli, stack, openai_client, feature
):
    user = new_user()
    refused = cli.fails("keys", "create", "--user", user, "--feature", feature)
    assert "--create-features" in refused.output and feature in refused.output
    assert "not a feature name" in cli.fails("keys", "create", "--user", user, "--feature", "deep analysis").output
    assert "not a feature name" in cli.fails("keys", "create", "--user", user, "--feature", "x" * 2048).output

    created = cli.json(
        "keys", "create", "--user", f" {user.upper()} ", "--feature", feature.upper(), "--feature", "Chat",
        "--create-features",
    )  # fmt: skip

    assert created["user_id"] == user and created["features"] == [feature, "chat"]
    assert created["default_feature"] == feature and created["any_feature"] is False
    assert feature in {f["name"] for f in cli.json("switch", "list")}  # configured with the defaults
    client = openai_client(created["secret"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=5)
    record = stack.stores.calls.get_call(raw.headers["x-costbrake-request-id"])
    assert record is not None and (record.feature, record.user_id) == (feature, user)
    with pytest.raises(openai.PermissionDeniedError, match=f"it may charge '{feature}', 'chat'"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=PROMPT, max_tokens=5, extra_headers={"X-Costbrake-Feature": "admin"}
        )
    [listed] = cli.json("keys", "list", "--user", user.upper())
    assert listed["features"] == [feature, "chat"]
    table = cli("keys", "list", "--user", user)
    assert f"{feature}, chat" in table


def test_given_any_feature_key_when_listed_then_the_opt_out_is_explicit(cli):
    created = cli.json("keys", "create", "--service", "--any-feature", "--name", "router")

    assert created["any_feature"] is True and created["features"] == ["default"]
    assert "any configured" in cli("keys", "list")


def test_given_user_ids_in_other_spellings_when_users_commands_then_they_act_on_the_canonical_user(cli):
    user = new_user()
    cli("keys", "create", "--user", user)

    cli("users", "block", user.upper(), "--for", "1h", "--reason", "abuse", "--actor", "oncall")
    shown = cli.json("users", "show", f"{user.capitalize()} ")

    assert shown["user"] == user and shown["blocked"] is True and shown["blocked_reason"] == "abuse (oncall)"
    assert [k["user_id"] for k in shown["keys"]] == [user]
    assert "U+200B" in cli.fails("users", "show", f"{user}\u200b").output
    assert "U+200B" in cli.fails("keys", "create", "--user", f"{user}\u200b").output
    assert "U+202E" in cli.fails("users", "block", f"\u202e{user}", "--for", "1h", "--reason", "x").output
    cli("users", "unblock", user.upper(), "--reason", "done")
    assert cli.json("users", "show", user)["blocked"] is False


def test_given_service_key_budgets_when_set_and_shown_then_audited_listed_and_they_refuse_once_spent(
    cli, stack, openai_client
):
    created = cli.json("keys", "create", "--service", "--feature", "chat", "--month", "5", "--name", "batch")
    key_id = created["key_id"]
    assert created["month_usd"] == "5" and created["hour_usd"] is None

    out = cli("budgets", "set", "--key", key_id, "--hour", "0.005", "--day", "1", "--actor", "lead")
    assert f"key {key_id}" in out and "$0.005/hour" in out
    assert "per user" in cli.fails("budgets", "set", "--key", key_id, "--rpm", "5").output
    assert "unknown key id 'nope'" in cli.fails("budgets", "set", "--key", "nope", "--day", "1").output
    everything = cli.json("budgets", "show")
    assert {"key_id": key_id, "hour_usd": "0.005", "day_usd": "1", "month_usd": "5"}.items() <= next(
        k for k in everything["keys"] if k["key_id"] == key_id
    ).items()

    client = openai_client(created["secret"], max_retries=0)
    with pytest.raises(openai.RateLimitError) as refused:
        for n in range(100):
            client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=100, user=f"anyone-{n}")
    assert refused.value.response.headers["x-costbrake-limit-scope"] == f"key {key_id}"

    shown = cli.json("budgets", "show", "--key", key_id)
    hour = next(b for b in shown["budgets"] if b["window"] == "hour")
    assert Decimal(hour["limit_usd"]) == Decimal("0.005") and Decimal(hour["spent_usd"]) <= Decimal("0.005")
    assert Decimal(hour["spent_usd"]) > 0 and Decimal(hour["reserved_usd"]) == 0
    assert [(h["actor"], h["from"], h["to"]) for h in shown["history"]] == [
        ("lead", "month_usd=5", "hour_usd=0.005, day_usd=1, month_usd=5")
    ]
    assert f"key {key_id}" in cli("budgets", "show", "--key", key_id)

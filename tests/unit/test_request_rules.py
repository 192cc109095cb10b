"""The request rules, without HTTP: the output cap (clamp or refuse, the default when none is asked), the input cap
(refused, or truncated for a feature that says so), the ``auto`` model and the downgrade of a feature in
downgrade state (dated snapshots as their base model).

The caps are pure functions of the body, the model's price and the feature (``gateway.bounds.bound_call``,
``gateway.reducers.bound_or_truncate``); the model choice is the planner's (``gateway.planner.plan_call``), given
the key, the settings snapshot and the price table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from costbrake.errors import InputTooLarge, InvalidRequest
from costbrake.gateway.bounds import bound_call
from costbrake.gateway.calls import PlannedCall
from costbrake.gateway.planner import plan_call
from costbrake.gateway.reducers import bound_or_truncate
from costbrake.pricing import PriceTable
from costbrake.providers import adapter_for
from costbrake.providers.base import CHAT_COMPLETIONS, MESSAGES, RESPONSES
from costbrake.records import ApiKey, Feature, OverCap, SettingsSnapshot, SwitchState

AUTO_TIERS = {"openai": "default", "anthropic": "standard"}
CAP = 2_000
FEATURE = Feature(name="rules", max_output_tokens=CAP, default_max_output_tokens=500, max_input_tokens=1_000)
REFUSING = replace(FEATURE, over_cap=OverCap.REFUSE)
# The field that carries the output cap in each API, and a model it serves.
OUTPUT_FIELDS = {CHAT_COMPLETIONS: ("max_tokens", "gpt-4o"), MESSAGES: ("max_tokens", "claude-haiku-4-5")}
OUTPUT_FIELDS[RESPONSES] = ("max_output_tokens", "gpt-4o")
APIS = list(OUTPUT_FIELDS)
SECRET = "cb-unit-request-rules"
HELLO = [{"role": "user", "content": "hello"}]


def body(api: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    """A minimal request of ``api`` for its model, with ``extra`` fields."""
    model = OUTPUT_FIELDS[api][1]
    if api == RESPONSES:
        return {"model": model, "input": text, **extra}
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def bound(api: str, request: dict[str, Any], feature: Feature = FEATURE):
    return bound_call(api, request, PriceTable.default().get(request["model"]), feature, auto_tiers=AUTO_TIERS)


# ---- the output cap (RULE 1) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_given_max_tokens_above_the_feature_cap_when_the_feature_clamps_then_the_cap_is_sent_upstream(api):
    field = OUTPUT_FIELDS[api][0]
    upstream = body(api, **{field: 10**9})

    bounds = bound(api, upstream)

    assert bounds.max_output_tokens == CAP
    assert upstream[field] == CAP


@pytest.mark.parametrize("api", APIS)
def test_given_max_tokens_above_the_feature_cap_when_the_feature_refuses_then_400_names_the_field_and_cap(api):
    field = OUTPUT_FIELDS[api][0]

    with pytest.raises(InvalidRequest) as refused:
        bound(api, body(api, **{field: CAP + 1}), REFUSING)

    assert refused.value.status == 400
    assert refused.value.param == field
    assert f"{field}={CAP + 1}" in refused.value.message and str(CAP) in refused.value.message


@pytest.mark.parametrize("api", APIS)
def test_given_max_tokens_exactly_at_the_cap_when_the_feature_refuses_then_it_is_sent_as_asked(api):
    field = OUTPUT_FIELDS[api][0]
    upstream = body(api, **{field: CAP})

    bounds = bound(api, upstream, REFUSING)

    assert bounds.max_output_tokens == upstream[field] == CAP


@pytest.mark.parametrize("api", APIS)
def test_given_no_max_tokens_when_bounded_then_the_features_default_is_sent_upstream(api):
    field = OUTPUT_FIELDS[api][0]
    upstream = body(api)

    bounds = bound(api, upstream, REFUSING)  # a default is never refused

    assert bounds.max_output_tokens == upstream[field] == FEATURE.default_max_output_tokens


def test_given_a_default_above_the_cap_when_no_max_tokens_is_asked_then_the_cap_is_the_default():
    upstream = body(MESSAGES)

    bounds = bound(MESSAGES, upstream, replace(REFUSING, default_max_output_tokens=CAP * 4))

    assert bounds.max_output_tokens == upstream["max_tokens"] == CAP


def test_given_the_clamped_bound_when_priced_then_the_worst_case_is_of_the_cap_not_of_the_asked_tokens():
    price = PriceTable.default().get("gpt-4o")
    asked = bound(CHAT_COMPLETIONS, body(CHAT_COMPLETIONS, max_tokens=10**9))
    at_cap = bound(CHAT_COMPLETIONS, body(CHAT_COMPLETIONS, max_tokens=CAP))

    assert asked.worst_case_usd(price) == at_cap.worst_case_usd(price)


# ---- the input cap ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_given_input_above_the_features_input_cap_when_bounded_then_413_names_the_feature_and_its_cap(api):
    with pytest.raises(InputTooLarge) as refused:
        bound(api, body(api, "budget " * 2_000))

    assert refused.value.status == 413
    assert f"feature 'rules' allows {FEATURE.max_input_tokens} input tokens" in refused.value.message


@pytest.mark.parametrize("api", APIS)
def test_given_input_well_within_the_input_cap_when_bounded_then_its_bound_is_within_the_cap(api):
    bounds = bound(api, body(api, "budget " * 50))

    assert 50 <= bounds.input_tokens <= FEATURE.max_input_tokens


def test_given_a_history_above_the_input_cap_when_the_feature_does_not_truncate_then_413():
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "old turn " * 100} for i in range(20)]
    request = {"model": "gpt-4o", "messages": [*history, *HELLO]}

    with pytest.raises(InputTooLarge):
        bound_or_truncate(CHAT_COMPLETIONS, request, PriceTable.default().get("gpt-4o"), FEATURE, auto_tiers=AUTO_TIERS)


def test_given_a_history_above_the_input_cap_when_the_feature_truncates_then_oldest_turns_go_until_it_fits():
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "old turn " * 100} for i in range(20)]
    request = {"model": "gpt-4o", "messages": [*history, *HELLO]}
    truncating = replace(FEATURE, truncate=True)

    upstream, bounds, dropped = bound_or_truncate(
        CHAT_COMPLETIONS, request, PriceTable.default().get("gpt-4o"), truncating, auto_tiers=AUTO_TIERS
    )

    assert dropped > 0 and upstream["messages"][-1] == HELLO[0]
    assert len(upstream["messages"]) == len(request["messages"]) - dropped
    assert bounds.input_tokens <= FEATURE.max_input_tokens


# ---- the model: auto and downgrade (the gateway's planning step) ------------------------------------------------


CHAT = Feature(name="chat")
KEY = ApiKey(key_id="k-rules", user_id="rules-user", service=False, default_feature="chat", features=("chat",))
ADAPTERS = {"openai": adapter_for(CHAT_COMPLETIONS), "anthropic": adapter_for(MESSAGES)}


@pytest.fixture
def plan(settings) -> Callable[..., PlannedCall]:
    """``plan(provider, request, state=..., **headers)``: what would be sent upstream, from the pure planner, for
    a request charged to the feature "chat" in switch ``state``."""

    def make(
        provider: str, request: dict[str, Any], state: SwitchState = SwitchState.ON, **headers: str
    ) -> PlannedCall:
        snapshot = SettingsSnapshot(tiers={}, features={"chat": replace(CHAT, state=state)}, global_budget=None)
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        prices = PriceTable.default()
        return plan_call(settings, ADAPTERS[provider], request, sent, KEY, snapshot, prices, lambda _: "provider-key")

    return make


@pytest.mark.parametrize(("provider", "complexity"), [("openai", "simple"), ("anthropic", "critical")])
def test_given_model_auto_with_a_complexity_when_planned_then_that_class_model_is_sent_upstream(
    plan, settings, provider, complexity
):
    planned = plan(provider, {"model": "auto", "messages": HELLO, "max_tokens": 10}, x_costbrake_complexity=complexity)

    chosen = settings.auto_models[provider][complexity]
    assert (planned.price.model, planned.body["model"], planned.model_requested) == (chosen, chosen, "auto")
    assert planned.downgraded_from is None


def test_given_model_auto_without_a_complexity_when_planned_then_the_complex_class_model_serves(plan, settings):
    planned = plan("anthropic", {"model": "auto", "messages": HELLO, "max_tokens": 10})

    assert planned.body["model"] == settings.auto_models["anthropic"]["complex"]


def test_given_model_auto_with_an_unknown_complexity_when_planned_then_400_on_the_model(plan):
    with pytest.raises(InvalidRequest) as refused:
        plan("openai", {"model": "auto", "messages": HELLO}, x_costbrake_complexity="trivial")

    assert refused.value.param == "model" and "simple" in refused.value.message


@pytest.mark.parametrize(
    ("provider", "asked", "served"),
    [
        ("anthropic", "claude-sonnet-4-5", "claude-haiku-4-5"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"),  # a dated snapshot: as its base
        ("openai", "gpt-4o", "gpt-4o-mini"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-mini"),
    ],
)
def test_given_a_feature_in_downgrade_when_planned_then_the_cheaper_model_serves_and_the_asked_one_is_kept(
    plan, provider, asked, served
):
    planned = plan(provider, {"model": asked, "messages": HELLO, "max_tokens": 10}, state=SwitchState.DOWNGRADE)

    assert (planned.price.model, planned.body["model"]) == (served, served)
    assert (planned.model_requested, planned.downgraded_from) == (asked, asked)
    assert planned.worst_case_usd == planned.bounds.worst_case_usd(PriceTable.default().get(served))


def test_given_a_feature_in_downgrade_when_the_model_has_no_cheaper_one_then_it_is_served_as_asked(plan):
    planned = plan("openai", {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 10}, state=SwitchState.DOWNGRADE)

    assert (planned.body["model"], planned.downgraded_from) == ("gpt-4o-mini", None)


def test_given_a_feature_switched_on_when_planned_then_the_asked_model_serves(plan):
    planned = plan("anthropic", {"model": "claude-sonnet-4-5", "messages": HELLO, "max_tokens": 10})

    assert (planned.body["model"], planned.downgraded_from) == ("claude-sonnet-4-5", None)


def test_given_auto_in_a_downgraded_feature_when_planned_then_the_class_model_is_downgraded_too(plan, settings):
    complex_model = settings.auto_models["anthropic"]["complex"]

    planned = plan("anthropic", {"model": "auto", "messages": HELLO, "max_tokens": 10}, state=SwitchState.DOWNGRADE)

    assert planned.downgraded_from == complex_model
    assert planned.body["model"] == settings.downgrade_map[complex_model]

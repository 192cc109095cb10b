"""`costbrake estimate` and `costbrake pricing` without a deployment: DESIGN's prices, worked by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from costbrake.cli import main
from costbrake.errors import UnknownModel
from costbrake.estimate import Workload, estimate, price_of
from costbrake.pricing import PriceTable

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "litellm_prices_sample.json"
TEN_THOUSAND = Decimal(10_000)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.default()


def test_given_gpt_4o_workload_then_per_call_daily_and_monthly_cost_are_exact(table):
    # gpt-4o: $2.50 / $10 per million -> 2000 x 0.0000025 + 500 x 0.00001 = 0.005 + 0.005 per call
    [result] = estimate([table.get("gpt-4o")], Workload(1000, 2000, 500), TEN_THOUSAND)

    assert result.per_call_usd == Decimal("0.01")
    assert result.daily_usd == Decimal("10")
    assert result.monthly_usd == Decimal("300")
    assert not result.over_threshold and not result.long_context


def test_given_several_models_then_cheapest_first_and_only_the_one_above_threshold_warns(table):
    models = [table.get(name) for name in ("claude-opus-4-1", "gpt-4o-mini", "claude-sonnet-4-5")]

    results = estimate(models, Workload(100_000, 2000, 500), TEN_THOUSAND)

    # per call: mini 0.0003 + 0.0003; sonnet 0.006 + 0.0075; opus 0.03 + 0.0375
    assert [(r.price.model, r.monthly_usd, r.over_threshold) for r in results] == [
        ("gpt-4o-mini", Decimal("1800"), False),
        ("claude-sonnet-4-5", Decimal("40500"), True),
        ("claude-opus-4-1", Decimal("202500"), True),
    ]


@pytest.mark.parametrize(("threshold", "warns"), [("300", False), ("299.99", True)])
def test_given_threshold_then_only_strictly_above_warns(table, threshold, warns):
    [result] = estimate([table.get("gpt-4o")], Workload(1000, 2000, 500), Decimal(threshold))

    assert result.over_threshold is warns


def test_given_input_above_long_context_threshold_then_the_long_context_rates_apply(table):
    # claude-sonnet-4-5 above 200k input: $6 / $22.50 -> 250000 x 0.000006 + 1000 x 0.0000225
    [result] = estimate([table.get("claude-sonnet-4-5")], Workload(10, 250_000, 1000), TEN_THOUSAND)

    assert result.long_context
    assert result.per_call_usd == Decimal("1.5225")
    assert result.monthly_usd == Decimal("456.75")


def test_given_misspelt_model_then_error_lists_close_names(table):
    with pytest.raises(UnknownModel) as error:
        price_of(table, "gpt4o-mini")

    assert "gpt-4o-mini" in error.value.message and "Did you mean" in error.value.message


# ---- the CLI without a deployment ------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    for name in ("COSTBRAKE_LEDGER_TABLE", "COSTBRAKE_CALLS_TABLE", "COSTBRAKE_STACK"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False, terminal_width=160)

    return run


def test_given_no_deployment_when_estimating_three_models_then_table_and_one_warning(cli):
    result = cli(
        "estimate", "--daily-calls", "20000", "--input-tokens", "3000", "--output-tokens", "800",
        "--model", "claude-opus-4-1", "--model", "gpt-4o-mini", "--model", "gpt-4o",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "packaged prices only" in result.stderr
    # opus: (3000 x 0.000015 + 800 x 0.000075) x 20000 x 30 = 0.105 x 600000
    assert "$63,000.00" in result.stdout and "$558.00" in result.stdout and "$9,300.00" in result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    assert warnings == ["WARNING: claude-opus-4-1 would cost $63,000.00/month, above the $10,000.00/month threshold."]


def test_given_json_then_amounts_are_exact_strings(cli):
    result = cli(
        "estimate", "--daily-calls", "1000", "--input-tokens", "2000", "--output-tokens", "500",
        "--model", "gpt-4o", "--threshold", "250", "--json",
    )  # fmt: skip

    data = json.loads(result.stdout)
    [gpt_4o] = data["models"]
    assert data["prices"] == "packaged" and data["threshold_usd"] == "250.00"
    assert (gpt_4o["per_call_usd"], gpt_4o["daily_usd"], gpt_4o["monthly_usd"]) == ("0.01", "10.00", "300.00")
    assert gpt_4o["over_threshold"] is True
    assert gpt_4o["usd_per_million"]["input"] == "2.5" and gpt_4o["usd_per_million"]["output"] == "10"


def test_given_unknown_model_when_estimating_then_error_names_close_models(cli):
    result = cli(
        "estimate", "--daily-calls", "1", "--input-tokens", "1", "--output-tokens", "1", "--model", "claude-sonet-4-5"
    )

    assert result.exit_code == 1
    assert "No price for model 'claude-sonet-4-5'" in result.stderr and "claude-sonnet-4-5" in result.stderr


def test_given_no_deployment_when_listing_prices_then_packaged_table_by_provider(cli):
    result = cli("pricing", "list", "--provider", "anthropic", "--json")

    listed = {p["model"]: p for p in json.loads(result.stdout)}
    # Generated from LiteLLM's map: every current Anthropic chat model (make prices).
    assert {"claude-haiku-4-5", "claude-opus-4-1", "claude-opus-4-5", "claude-opus-4-6", "claude-sonnet-4-5"} <= set(
        listed
    )
    assert len(listed) >= 20
    assert listed["claude-haiku-4-5"]["usd_per_million"] == {
        "input": "1",
        "output": "5",
        "cache read": "0.1",
        "cache write 5m": "1.25",
        "cache write 1h": "2",
        "reasoning": "5",
    }
    assert {p["source"] for p in listed.values()} == {"packaged"}


def test_given_no_deployment_when_showing_a_model_then_both_context_tiers(cli):
    result = cli("pricing", "show", "claude-sonnet-4-5", "--json")

    shown = json.loads(result.stdout)
    assert shown["usd_per_million"]["input"] == "3" and shown["usd_per_million"]["output"] == "15"
    assert shown["long_context"]["above_input_tokens"] == 200_000
    assert shown["long_context"]["usd_per_million"]["output"] == "22.5"
    assert shown["source"] == "packaged" and shown["history"] == []


def test_given_no_deployment_when_importing_then_dry_run_diff_against_packaged_without_new_models(cli):
    result = cli("pricing", "import", str(SAMPLE))

    assert result.exit_code == 0, result.output
    assert "0 added, 4 changed, 5 unchanged, 121 priced now but not in the file" in result.stdout
    assert "1 not priced here, not added" in result.stdout and "chatgpt-4o-latest" in result.stdout
    assert "Dry run: nothing stored" in result.stdout and "store 4 prices" in result.stdout


def test_given_add_new_when_importing_then_new_models_are_listed_with_their_prices(cli):
    result = cli("pricing", "import", str(SAMPLE), "--add-new")

    assert result.exit_code == 0, result.output
    assert "1 added, 4 changed, 5 unchanged, 121 priced now but not in the file" in result.stdout
    assert "chatgpt-4o-latest" in result.stdout and "5/15" in result.stdout
    assert "store 5 prices" in result.stdout


def test_given_no_deployment_when_importing_with_apply_then_it_refuses(cli):
    result = cli("pricing", "import", str(SAMPLE), "--apply")

    assert result.exit_code == 1 and "Which deployment?" in result.stderr


def test_given_model_option_when_importing_then_only_that_model_is_compared(cli):
    result = cli("pricing", "import", str(SAMPLE), "--model", "o3", "--json")

    diff = json.loads(result.stdout)
    assert list(diff["changed"]) == ["o3"] and diff["added"] == {} and diff["not_in_file"] == []
    assert diff["changed"]["o3"]["input"] == {"old_usd_per_million": "2", "new_usd_per_million": "10"}
    assert diff["applied"] is False and diff["compared_with"] == "packaged"

"""Generate the packaged price table (``data/prices.json``) from LiteLLM's community price map.

``make prices MAP=path/to/model_prices_and_context_window.json`` (or, without MAP, the copy shipped in the
``litellm`` wheel, fetched with ``pip download --no-deps``; litellm is never installed). Every OpenAI and
Anthropic model ``costbrake pricing import`` reads is kept — chat, responses and embedding models, without
fine-tuning templates, provider-routed names and models priced per audio token — with the rates the
gateway bills (input, output, cache read, cache writes 5m/1h, reasoning, the long-context tier, the
priority/flex/batch tiers), ``max_input_tokens``/``max_output_tokens`` and the web-search price per use.

``data/prices_overrides.json`` is merged into the map first: per model, its fields replace LiteLLM's
(``null`` removes one) or add a model LiteLLM lacks; each entry says ``why``. The output is the table
``PriceTable.to_dict`` writes: every rate explicit, as an exact decimal string.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from costbrake.pricing import PRICED_TIERS, ModelPrice, PriceTable
from costbrake.pricing_import import ImportedPrices, PriceImportError, parse_litellm_data

DATA = Path(__file__).parent / "data"
PRICES = DATA / "prices.json"
OVERRIDES = DATA / "prices_overrides.json"
LITELLM_VERSION = "1.108.7"
LITELLM_MEMBER = "litellm/model_prices_and_context_window_backup.json"
_WHY = "why"
# A service tier this far from the standard rate is worth a look (printed, not refused).
_ODD_RATIO_BELOW, _ODD_RATIO_ABOVE = Decimal("0.4"), Decimal("3")


@dataclass(frozen=True)
class Generated:
    table: PriceTable
    imported: ImportedPrices
    overridden: list[str]  # models whose LiteLLM entry an override changed
    added: list[str]  # models only the overrides price


def apply_overrides(
    litellm: Mapping[str, Any], overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """LiteLLM's map with each override merged into its model's entry (or added)."""
    merged = dict(litellm)
    overridden: list[str] = []
    added: list[str] = []
    for model, fields in overrides.items():
        if not isinstance(fields, Mapping) or not isinstance(fields.get(_WHY), str) or not fields[_WHY]:
            raise PriceImportError(f"override {model}: must be an object that says why")
        patch = {key: value for key, value in fields.items() if key != _WHY}
        key = next((k for k in (model, f"anthropic/{model}", f"openai/{model}") if k in merged), None)
        if key is None:
            merged[model] = {k: v for k, v in patch.items() if v is not None}
            added.append(model)
            continue
        entry = dict(merged[key])
        for name, value in patch.items():
            if value is None:
                entry.pop(name, None)
            else:
                entry[name] = value
        merged[key] = entry
        overridden.append(model)
    return merged, sorted(overridden), sorted(added)


def generate(litellm_text: str, overrides: Mapping[str, Any]) -> Generated:
    try:
        litellm = json.loads(litellm_text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise PriceImportError(f"not JSON: {error}") from error
    if not isinstance(litellm, dict):
        raise PriceImportError("not LiteLLM's price map: the top level must be an object of models")
    merged, overridden, added = apply_overrides(litellm, overrides)
    imported = parse_litellm_data(merged)
    if imported.unusable:
        lines = "\n".join(f"  {model}: {why}" for model, why in sorted(imported.unusable.items()))
        print(f"left out, no usable token prices:\n{lines}", file=sys.stderr)
    return Generated(PriceTable(imported.prices.values()), imported, overridden, added)


def table_json(table: PriceTable) -> str:
    return json.dumps(table.to_dict(), indent=2, sort_keys=False) + "\n"


def odd_tier_ratios(price: ModelPrice) -> list[str]:
    """Service-tier rates far from their standard rate (a likely data error), as readable lines."""
    odd = []
    for tier, tier_rates in price.service_tiers:
        for (name, rate), (_, standard) in zip(tier_rates.rates._items(), price.rates._items(), strict=True):
            if standard > 0 and not _ODD_RATIO_BELOW <= rate / standard <= _ODD_RATIO_ABOVE:
                odd.append(f"{price.model} {tier} {name}: {rate / standard:.3g}x standard")
    return odd


def summary(generated: Generated) -> str:
    models = generated.table.models()
    by_kind = Counter((price.provider, price.mode) for price in models)
    tiers = Counter(tier for price in models for tier, _ in price.service_tiers)
    lines = [
        f"{len(models)} models: "
        + ", ".join(f"{count} {provider} {mode}" for (provider, mode), count in sorted(by_kind.items())),
        "with their own service-tier rates: "
        + ", ".join(f"{tiers[tier]} {tier}" for tier in PRICED_TIERS)
        + f"; long-context tier: {sum(1 for p in models if p.long_context_threshold)}"
        + f"; web search price: {sum(1 for p in models if p.web_search_per_use is not None)}"
        + f"; context window: {sum(1 for p in models if p.max_input_tokens)}",
        "skipped: " + ", ".join(f"{n} {why}" for why, n in generated.imported.skipped.most_common()),
        f"overrides: {', '.join(generated.overridden) or 'none'}; added: {', '.join(generated.added) or 'none'}",
    ]
    odd = [line for price in models for line in odd_tier_ratios(price)]
    if odd:
        lines.append("service-tier rates far from standard (check them):\n  " + "\n  ".join(odd))
    return "\n".join(lines)


def litellm_map_from_wheel(version: str) -> str:
    """The map shipped in the ``litellm`` wheel of ``version``, downloaded (not installed) with pip."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"litellm=={version}", "-d", folder],
            check=True,
        )
        wheel = next(Path(folder).glob("litellm-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(LITELLM_MEMBER).decode("utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--map", type=Path, help="LiteLLM's model_prices_and_context_window.json")
    parser.add_argument("--litellm-version", default=LITELLM_VERSION, help="the wheel to read the map from")
    parser.add_argument("--overrides", type=Path, default=OVERRIDES)
    parser.add_argument("--out", type=Path, default=PRICES)
    parser.add_argument("--check", action="store_true", help="fail if --out differs from what would be written")
    args = parser.parse_args(argv)
    text = args.map.read_text(encoding="utf-8") if args.map else litellm_map_from_wheel(args.litellm_version)
    overrides = json.loads(args.overrides.read_text(encoding="utf-8"))
    try:
        generated = generate(text, overrides)
    except PriceImportError as error:
        print(f"cannot generate the price table: {error}", file=sys.stderr)
        return 1
    output = table_json(generated.table)
    print(summary(generated))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != output:
            print(f"{args.out} is not what the map and overrides generate", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(output, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The offline token estimate: never below the reference tokenizers on the corpus, not absurdly above,
monotone as text grows, the adversarial text of issue 8 counted, and message structure counted.
(``test_token_bound.py`` checks arbitrary Unicode against the real tokenizers.)

Reference counts come from ``tests/data/corpus/reference_tokens.json`` (``python -m bench.estimator
--refresh DIR`` recounts them with the real tokenizers); each entry carries the SHA-256 of the file it
counted, so an edited corpus file fails here until it is recounted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from costbrake.errors import InvalidRequest
from costbrake.local.mock_usage import openai_image_tokens as billed_image_tokens
from costbrake.tokens import (
    InputEstimate,
    UnsizableInput,
    estimate_anthropic_input_tokens,
    estimate_openai_input_tokens,
    estimate_text_tokens,
)

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
REFERENCE = json.loads((CORPUS / "reference_tokens.json").read_text(encoding="utf-8"))["files"]
FILES = sorted(path.name for path in CORPUS.glob("*.txt"))
# Claude 3+ tokenizers count up to ~30% more than o200k_base on the same text.
CLAUDE_OVER_O200K = 1.3
# Non-ASCII text is counted per UTF-8 byte (the proven bound), so non-Latin scripts cost up to their bytes
# per token: ~7x on Russian for o200k. English prose, code and structured data stay far closer.
MAX_RATIO = 7.0
MAX_RATIO_ENGLISH_AND_CODE = 1.6
MAX_OVERALL_RATIO_ENGLISH_AND_CODE = 1.35
ENGLISH_AND_CODE = [name for name in FILES if name.startswith(("prose_", "code_", "data_", "markdown", "log_"))]


def corpus_text(name: str) -> str:
    return (CORPUS / name).read_bytes().decode("utf-8")


def reference(provider: str | None, name: str) -> int:
    counts = REFERENCE[name]
    openai = counts["o200k_base"]
    anthropic = max(counts["claude_legacy"], math.ceil(CLAUDE_OVER_O200K * openai))
    return {"openai": openai, "anthropic": anthropic}.get(provider or "", max(openai, anthropic, counts["cl100k_base"]))


# --- corpus ---------------------------------------------------------------------------------------------------


def test_given_corpus_when_listed_then_it_covers_the_kinds_of_text_prompts_carry() -> None:
    expected = {
        "prose_english.txt",
        "code_python.txt",
        "code_typescript.txt",
        "code_rust.txt",
        "code_go.txt",
        "code_sql.txt",
        "data_json_pretty.txt",
        "data_json_minified.txt",
        "markdown_table.txt",
        "ids_numbers.txt",
        "base64_blob.txt",
        "chinese.txt",
        "japanese.txt",
        "russian.txt",
        "arabic.txt",
        "emoji_chat.txt",
        "whitespace_heavy.txt",
    }
    assert expected <= set(FILES)
    assert set(FILES) == set(REFERENCE), "every corpus file needs reference counts (bench.estimator --refresh)"


@pytest.mark.parametrize("name", FILES)
def test_given_corpus_file_when_compared_with_reference_then_it_is_the_file_that_was_counted(name: str) -> None:
    assert hashlib.sha256(corpus_text(name).encode("utf-8")).hexdigest() == REFERENCE[name]["sha256"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", None])
@pytest.mark.parametrize("name", FILES)
def test_given_corpus_file_when_estimated_then_never_below_the_reference(name: str, provider: str | None) -> None:
    estimate = estimate_text_tokens(corpus_text(name), provider=provider)
    assert estimate >= reference(provider, name)


@pytest.mark.parametrize("provider", ["openai", "anthropic", None])
@pytest.mark.parametrize("name", FILES)
def test_given_corpus_file_when_estimated_then_not_absurdly_high(name: str, provider: str | None) -> None:
    estimate = estimate_text_tokens(corpus_text(name), provider=provider)
    limit = MAX_RATIO_ENGLISH_AND_CODE if name in ENGLISH_AND_CODE else MAX_RATIO
    assert estimate <= limit * reference(provider, name)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_given_english_and_code_corpus_when_estimated_then_overall_at_most_35_percent_above(provider: str) -> None:
    estimate = sum(estimate_text_tokens(corpus_text(name), provider=provider) for name in ENGLISH_AND_CODE)
    assert estimate <= MAX_OVERALL_RATIO_ENGLISH_AND_CODE * sum(reference(provider, name) for name in ENGLISH_AND_CODE)


@pytest.mark.parametrize("provider", ["openai", "anthropic", None])
@pytest.mark.parametrize("name", FILES)
def test_given_corpus_file_when_estimated_then_never_above_its_bytes(name: str, provider: str | None) -> None:
    # Every token of a byte-level BPE is at least one byte (Claude's: of the NFKC form): more would only
    # refuse calls.
    text = corpus_text(name)
    size = len(text.encode("utf-8"))
    if provider != "openai":
        size = max(size, len(unicodedata.normalize("NFKC", text).encode("utf-8")))
    assert estimate_text_tokens(text, provider=provider) <= size


@pytest.mark.parametrize("name", FILES)
def test_given_growing_text_when_estimated_then_estimate_never_shrinks(name: str) -> None:
    lines = corpus_text(name).split("\n")
    previous = 0
    for count in range(1, len(lines) + 1):
        estimate = estimate_text_tokens("\n".join(lines[:count]))
        assert estimate >= previous, f"shrank after line {count}"
        previous = estimate


def test_given_repeated_text_when_estimated_then_estimate_grows_with_each_copy() -> None:
    paragraph = corpus_text("prose_english.txt")[:600]
    estimates = [estimate_text_tokens("\n".join([paragraph] * copies)) for copies in range(1, 6)]
    assert estimates == sorted(set(estimates))


def test_given_empty_text_when_estimated_then_zero_and_any_text_costs_something() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("a") >= 1
    assert estimate_text_tokens(" ") >= 1
    assert estimate_text_tokens("\U0001f600") >= 1


def test_given_unknown_provider_when_estimated_then_refused() -> None:
    with pytest.raises(ValueError):
        estimate_text_tokens("hello", provider="gemini")


def test_given_no_provider_when_estimated_then_the_larger_profile_wins() -> None:
    text = corpus_text("russian.txt")
    assert estimate_text_tokens(text) == max(
        estimate_text_tokens(text, provider="openai"), estimate_text_tokens(text, provider="anthropic")
    )


def test_given_100kb_of_text_when_estimated_then_it_takes_milliseconds() -> None:
    blob = "\n".join(corpus_text(name) for name in FILES)
    blob = blob * (1 + 100_000 // len(blob))
    started = time.perf_counter()
    estimate_text_tokens(blob)
    assert time.perf_counter() - started < 0.5


def test_given_fresh_interpreter_when_tokens_imported_then_no_sdk_or_tokenizer_is_loaded() -> None:
    code = (
        "import sys, costbrake.tokens as t; t.estimate_text_tokens('warm up the word list'); "
        "heavy = {'openai', 'anthropic', 'tiktoken', 'tokenizers', 'httpx', 'boto3'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- OpenAI chat.completions bodies -------------------------------------------------------------------------


def openai_body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages), **extra}


def openai_input(body: dict[str, Any]) -> int:
    estimate = estimate_openai_input_tokens(body)
    assert estimate.unsized == ()
    return estimate.tokens


def test_given_one_openai_message_when_estimated_then_framing_and_reply_priming_are_added() -> None:
    text = "What is the capital of France?"
    estimate = openai_input(openai_body({"role": "user", "content": text}))
    # 4 per message + 3 reply priming on top of the text (and the role).
    assert estimate >= estimate_text_tokens(text, provider="openai") + 7


def test_given_more_openai_messages_when_estimated_then_each_adds_its_framing() -> None:
    one = openai_input(openai_body({"role": "user", "content": "hi"}))
    two = openai_input(openai_body({"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}))
    named = openai_input(openai_body({"role": "user", "content": "hi", "name": "alice"}))
    assert two >= one + 4 + estimate_text_tokens("be brief", provider="openai")
    assert named >= one + 2


def test_given_content_parts_when_estimated_then_text_parts_count_like_a_string() -> None:
    text = corpus_text("prose_english.txt")[:2000]
    as_string = openai_input(openai_body({"role": "user", "content": text}))
    as_parts = openai_input(
        openai_body(
            {"role": "user", "content": [{"type": "text", "text": text[:1000]}, {"type": "text", "text": text[1000:]}]}
        )
    )
    assert as_parts >= as_string - 2
    assert as_parts <= as_string * 1.05 + 5


@pytest.mark.parametrize(
    ("model", "detail", "allowance"),
    [
        ("gpt-4o", "high", 2_700),
        ("gpt-4.1-mini", None, 2_700),
        ("o4-mini", "auto", 2_700),
        ("gpt-4o", "low", 600),
        # Patch-billed models bill up to 1,536 patches x their multiplier whatever the detail level:
        # x 2.46 on gpt-4.1-nano and gpt-5-nano (OpenAI's vision guide) = 3,779.
        ("gpt-4.1-nano", "high", 3_779),
        ("gpt-4.1-nano-2025-04-14", "low", 3_779),
        ("gpt-5-nano", None, 3_779),
        ("gpt-4.1-mini", "low", 2_700),
        ("o4-mini", "low", 2_700),
        # gpt-4o-mini counts 2,833 + 5,667 per tile, up to 8 tiles.
        ("gpt-4o-mini", "high", 48_169),
        ("gpt-4o-mini-2024-07-18", "low", 2_833),
    ],
)
def test_given_image_part_when_estimated_then_a_conservative_allowance_is_added(
    model: str, detail: str | None, allowance: int
) -> None:
    image: dict[str, Any] = {"url": "data:image/png;base64," + "iVBORw0KGgo" * 5000}
    if detail:
        image["detail"] = detail
    text_only = {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"}]}
    with_image = {"role": "user", "content": [*text_only["content"], {"type": "image_url", "image_url": image}]}
    without = openai_input({"model": model, "messages": [text_only]})
    with_it = openai_input({"model": model, "messages": [with_image]})
    # The allowance replaces the base64 payload, which is never priced as text.
    assert with_it - without == allowance


def png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return base64.b64encode(header + b"\x08\x02\x00\x00\x00" + bytes(64)).decode()


def gif(width: int, height: int) -> str:
    return base64.b64encode(b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little") + bytes(16)).decode()


def jpeg(width: int, height: int) -> str:
    exif = b"\xff\xe1" + (2 + 5000).to_bytes(2, "big") + bytes(5000)  # the size marker comes after EXIF data
    frame = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes(12)
    return base64.b64encode(b"\xff\xd8" + exif + frame).decode()


def webp(width: int, height: int) -> str:
    chunk = b"VP8X" + (10).to_bytes(4, "little") + bytes(4)
    chunk += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return base64.b64encode(b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk).decode()


@pytest.mark.parametrize(
    ("model", "image", "detail", "tokens"),
    [
        # 512x512: one tile (85 + 170) vs 16 x 16 patches x 1.72 = 441: the larger formula.
        ("gpt-4o", png(512, 512), "high", 441),
        # 4096x4096 -> 2048 -> 768x768: 4 tiles = 765 vs 1,536 patches x the model's multiplier.
        ("gpt-4.1-mini", jpeg(4096, 4096), None, 2_489),  # x 1.62
        ("o4-mini", jpeg(4096, 4096), None, 2_642),  # x 1.72
        ("gpt-4.1-nano", jpeg(4096, 4096), "low", 3_779),  # x 2.46, low detail or not
        ("gpt-4.1-nano", png(512, 512), None, 630),  # 256 patches x 2.46
        ("gpt-4o", gif(64, 64), "low", 85 + 170),  # small images cost less than the low-detail allowance
        ("gpt-4o", webp(100, 40), "auto", 85 + 170),
        ("gpt-4o-mini", png(1024, 1024), "high", 2_833 + 5_667 * 4),  # 768x768: 4 tiles
    ],
)
def test_given_image_with_a_readable_header_when_estimated_then_the_provider_formula_bounds_it(
    model: str, image: str, detail: str | None, tokens: int
) -> None:
    url: dict[str, Any] = {"url": "data:image/png;base64," + image, **({"detail": detail} if detail else {})}
    text_only = {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"}]}
    with_image = {"role": "user", "content": [*text_only["content"], {"type": "image_url", "image_url": url}]}
    without = openai_input({"model": model, "messages": [text_only]})
    assert openai_input({"model": model, "messages": [with_image]}) - without == tokens


@pytest.mark.parametrize(
    "model",
    ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5-mini", "gpt-5-nano", "o3", "o4-mini"],
)
@pytest.mark.parametrize("size", [(64, 64), (512, 512), (1024, 1024), (1800, 2400), (4096, 4096), (8000, 300), None])
@pytest.mark.parametrize("detail", ["low", "high", "auto"])
def test_given_an_image_on_any_openai_model_when_estimated_then_it_bounds_what_the_mock_provider_bills(
    model: str, size: tuple[int, int] | None, detail: str
) -> None:
    url = "data:image/png;base64," + (png(*size) if size else "iVBORw0KGgo" * 5000)
    text_only = {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"}]}
    image = {"type": "image_url", "image_url": {"url": url, "detail": detail}}
    with_image = {"role": "user", "content": [*text_only["content"], image]}
    bound = openai_input({"model": model, "messages": [with_image]}) - openai_input(
        {"model": model, "messages": [text_only]}
    )
    assert bound >= billed_image_tokens(model, size, detail=detail)


def test_given_tools_and_response_format_when_estimated_then_their_schemas_are_counted() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
        "required": ["city"],
    }
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather", "parameters": schema},
    }
    base = openai_body({"role": "user", "content": "Weather in Paris?"})
    plain = openai_input(base)
    with_tools = openai_input({**base, "tools": [tool, tool]})
    with_functions = openai_input({**base, "functions": [tool["function"]]})
    with_format = openai_input(
        {**base, "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": schema}}}
    )
    schema_tokens = estimate_text_tokens(json.dumps(schema), provider="openai")
    assert with_tools >= plain + 2 * schema_tokens
    assert with_functions >= plain + schema_tokens
    assert with_format >= plain + schema_tokens
    assert openai_input({**base, "response_format": {"type": "text"}}) == plain


def test_given_assistant_tool_calls_and_tool_results_when_estimated_then_both_are_counted() -> None:
    arguments = json.dumps({"city": "Paris", "unit": "celsius", "days": [1, 2, 3]})
    base = openai_body({"role": "user", "content": "Weather?"})
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ],
    }
    result = {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"}
    plain = openai_input(base)
    with_call = openai_input({**base, "messages": [*base["messages"], call]})
    with_result = openai_input({**base, "messages": [*base["messages"], call, result]})
    assert with_call >= plain + 4 + estimate_text_tokens(arguments, provider="openai")
    assert with_result >= with_call + 4 + estimate_text_tokens("18C and sunny", provider="openai")


def test_given_file_part_when_estimated_then_inline_data_is_unsized_and_a_file_id_is_refused() -> None:
    # A 40-page PDF of a few KB bills ~150k tokens: its base64 size bounds nothing.
    inline = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK" * 50},
    }
    by_id = {"type": "file", "file": {"file_id": "file-abc123"}}
    text = {"type": "text", "text": "Summarise."}
    estimate = estimate_openai_input_tokens(openai_body({"role": "user", "content": [text, inline, inline]}))
    assert estimate.unsized == ("file", "file")
    assert estimate.tokens == openai_input(openai_body({"role": "user", "content": [text]}))
    with pytest.raises(UnsizableInput) as refused:
        estimate_openai_input_tokens(openai_body({"role": "user", "content": [by_id]}))
    assert isinstance(refused.value, InvalidRequest)
    assert refused.value.status == 400


def test_given_audio_or_unknown_part_when_estimated_then_it_is_named_unsized() -> None:
    audio = base64.b64encode(random.Random(7).randbytes(1200)).decode()
    parts = [
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
        {"type": "input_video", "video": {"data": audio}},
    ]
    estimate = estimate_openai_input_tokens(openai_body({"role": "user", "content": parts}))
    assert estimate.unsized == ("input_audio", "input_video")


def test_given_unsized_estimate_when_bounded_then_the_context_window_is_the_bound() -> None:
    assert InputEstimate(tokens=500).bound(128_000) == 500
    assert InputEstimate(tokens=500, unsized=("document",)).bound(128_000) == 128_000
    assert InputEstimate(tokens=200_000, unsized=("document",)).bound(128_000) == 200_000
    with pytest.raises(AttributeError):
        InputEstimate(tokens=1).tokens = 2  # type: ignore[misc]


# --- Anthropic Messages bodies --------------------------------------------------------------------------------


def anthropic_body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": list(messages), **extra}


def anthropic_input(body: dict[str, Any]) -> int:
    estimate = estimate_anthropic_input_tokens(body)
    assert estimate.unsized == ()
    return estimate.tokens


def test_given_system_as_string_or_blocks_when_estimated_then_it_is_counted_either_way() -> None:
    system = corpus_text("prose_english.txt")[:1500]
    user = {"role": "user", "content": "Summarise."}
    none = anthropic_input(anthropic_body(user))
    as_string = anthropic_input(anthropic_body(user, system=system))
    as_blocks = anthropic_input(
        anthropic_body(user, system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}])
    )
    system_tokens = estimate_text_tokens(system, provider="anthropic")
    assert as_string >= none + system_tokens
    assert as_blocks >= as_string


def test_given_more_anthropic_messages_when_estimated_then_each_adds_its_framing() -> None:
    one = anthropic_input(anthropic_body({"role": "user", "content": "hi"}))
    three = anthropic_input(
        anthropic_body(
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": "bye"},
        )
    )
    assert three >= one + 2 * 5 + 2


def test_given_tool_use_and_tool_result_blocks_when_estimated_then_inputs_and_results_count() -> None:
    tool_input = {"ticker": "ACME", "form": "10-K", "item": "8", "year": 2024}
    result_text = corpus_text("log_csv.txt")[:1200]
    conversation = [
        {"role": "user", "content": "Current ratio?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": tool_input}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "text", "text": result_text},
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                }
            ],
        },
    ]
    first = anthropic_input(anthropic_body(conversation[0]))
    full = anthropic_input(anthropic_body(*conversation))
    counted = (
        estimate_text_tokens(json.dumps(tool_input), provider="anthropic")
        + estimate_text_tokens(result_text, provider="anthropic")
        + 1_600
    )
    assert full >= first + counted


def test_given_image_block_when_estimated_then_1600_tokens_replace_the_base64() -> None:
    text = {"type": "text", "text": "Describe this."}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 9000}}
    without = anthropic_input(anthropic_body({"role": "user", "content": [text]}))
    with_image = anthropic_input(anthropic_body({"role": "user", "content": [text, image]}))
    assert with_image - without == 1_600 + 3  # allowance + block framing


@pytest.mark.parametrize(
    ("image", "tokens"),
    [
        (png(200, 150), 200 * 150 // 750 + 1),
        (jpeg(1000, 1000), 1_334),
        (webp(4000, 3000), 1_600),  # resized to ~1.15 megapixels: the maximum
        ("not an image", 1_600),
    ],
)
def test_given_image_block_with_a_header_when_estimated_then_width_times_height_over_750_bounds_it(
    image: str, tokens: int
) -> None:
    text = {"type": "text", "text": "Describe this."}
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}}
    without = anthropic_input(anthropic_body({"role": "user", "content": [text]}))
    assert anthropic_input(anthropic_body({"role": "user", "content": [text, block]})) - without == tokens + 3


def test_given_tools_when_estimated_then_schemas_and_tool_system_prompt_count() -> None:
    tool = {
        "name": "lookup_filing",
        "description": "Fetch a section of an SEC filing.",
        "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]},
    }
    base = anthropic_body({"role": "user", "content": "hi"})
    plain = anthropic_input(base)
    with_tool = anthropic_input({**base, "tools": [tool]})
    with_server_tool = anthropic_input({**base, "tools": [tool, {"type": "bash_20250124", "name": "bash"}]})
    assert with_tool >= plain + 346 + estimate_text_tokens(json.dumps(tool), provider="anthropic")
    assert with_server_tool >= with_tool + 245


def test_given_documents_when_estimated_then_text_ones_count_pdfs_are_unsized_and_remote_ones_refused() -> None:
    text_doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": corpus_text("russian.txt")},
    }
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x" * 900}}
    url_doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}}
    estimate = anthropic_input(anthropic_body({"role": "user", "content": [text_doc]}))
    assert estimate >= reference("anthropic", "russian.txt")
    with_pdf = estimate_anthropic_input_tokens(anthropic_body({"role": "user", "content": [text_doc, pdf]}))
    assert with_pdf.unsized == ("document",)
    assert with_pdf.tokens == estimate + 3  # the block's framing; its pages are the context window's
    with pytest.raises(UnsizableInput):
        estimate_anthropic_input_tokens(anthropic_body({"role": "user", "content": [url_doc]}))


def test_given_server_tool_result_or_unknown_block_when_estimated_then_it_is_named_unsized() -> None:
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"encrypted_content": "x"}]}
    estimate = estimate_anthropic_input_tokens(anthropic_body({"role": "user", "content": [result]}))
    assert estimate.unsized == ("web_search_tool_result",)


@pytest.mark.parametrize("name", FILES)
def test_given_corpus_file_as_a_message_when_estimated_then_never_below_the_reference(name: str) -> None:
    text = corpus_text(name)
    openai = openai_input(openai_body({"role": "user", "content": text}))
    anthropic = anthropic_input(anthropic_body({"role": "user", "content": text}))
    assert openai >= reference("openai", name) + 7
    assert anthropic >= reference("anthropic", name)

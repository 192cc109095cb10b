"""`costbrake local` (what `make dev` runs) as a new user meets it: a process that prints a URL and a key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import anthropic
import openai
import pytest


@pytest.fixture
def local_process() -> Iterator[dict[str, str]]:
    env = {**os.environ, "COLUMNS": "200", "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "costbrake.cli", "local", "--port", "0", "--moto-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while "key" not in printed and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := re.search(r"OpenAI base URL:\s+(\S+)", line):
            printed["openai"] = match.group(1)
        if match := re.search(r"Anthropic base URL:\s+(\S+)", line):
            printed["anthropic"] = match.group(1)
        if match := re.search(r"dev key:\s+(\S+)", line):
            printed["key"] = match.group(1)
    try:
        assert set(printed) == {"openai", "anthropic", "key"}, printed
        yield printed
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_given_costbrake_local_when_sdks_use_the_printed_url_and_key_then_calls_are_served_and_priced(
    local_process,
):
    chat = openai.OpenAI(base_url=local_process["openai"], api_key=local_process["key"])
    raw = chat.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20
    )
    claude = anthropic.Anthropic(base_url=local_process["anthropic"], api_key=local_process["key"])
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )

    assert "mock provider" in raw.parse().choices[0].message.content
    assert Decimal(raw.headers["x-costbrake-cost-usd"]) > 0
    assert message.content[0].text

"""`costbrake local` (what `make dev` runs) as a new user meets it: a process that prints a URL and a key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import anthropic
import openai
import pytest
from support.eventually import eventually


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited: only its parent has not reaped it yet
        return stat.read().split(")")[1].split()[0] != "Z"


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
    while "pids" not in printed and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := re.search(r"OpenAI base URL:\s+(\S+)", line):
            printed["openai"] = match.group(1)
        if match := re.search(r"Anthropic base URL:\s+(\S+)", line):
            printed["anthropic"] = match.group(1)
        if match := re.search(r"dev key:\s+(\S+)", line):
            printed["key"] = match.group(1)
        if match := re.search(
            r"processes \(pid\):\s+gateway app (\d+), moto (\d+), pipeline and mock provider (\d+)", line
        ):
            printed["pids"] = " ".join(match.groups())
    try:
        assert set(printed) == {"openai", "anthropic", "key", "pids"}, printed
        yield printed | {"pid": str(process.pid)}
    finally:
        if process.poll() is None:
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


def test_given_costbrake_local_then_the_gateway_moto_and_the_pipeline_run_in_separate_processes(local_process):
    gateway, moto, pipeline = (int(pid) for pid in local_process["pids"].split())

    assert len({gateway, moto, pipeline}) == 3
    assert pipeline == int(local_process["pid"])
    assert _alive(gateway) and _alive(moto)
    with open(f"/proc/{gateway}/cmdline") as cmdline:
        assert "costbrake.gateway.asgi:create_app" in cmdline.read()


def test_given_costbrake_local_when_ctrl_c_then_it_stops_cleanly_with_its_child_processes(local_process):
    gateway, moto, _ = (int(pid) for pid in local_process["pids"].split())
    process_id = int(local_process["pid"])

    os.kill(process_id, signal.SIGINT)
    eventually(
        lambda: [pid for pid in (process_id, gateway, moto) if _alive(pid)],
        until=lambda alive: not alive,
        timeout=20,
        interval=0.1,
        what="costbrake local and its children exiting",
    )

    assert not _alive(gateway) and not _alive(moto)

"""Cold import of the gateway app as Lambda starts it: the dependency layer and the runtime's boto3 only.

The layer is built with the recipe ``sam build`` runs (layers/deps/Makefile: the pinned requirements, the
costbrake package, bytecode in unchecked-hash mode), for this machine's platform: the deployed layer holds
arm64 wheels, which an x86_64 machine cannot import. The Lambda python3.11 runtime provides boto3 (and
botocore, s3transfer, jmespath, dateutil, six, urllib3) from /var/runtime; a copy of the venv's version, with
bytecode, plays that directory. A fresh interpreter (``-I -S``: no site-packages, no environment, no user site)
gets exactly ``[layer, runtime]`` on its path, as functions/gateway/run.sh sets PYTHONPATH, then imports
``costbrake.gateway.asgi`` and calls ``create_app()`` (what ``uvicorn --factory`` does at cold start).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".aws-sam" / "bench"  # ignored by git; `make clean` removes it
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")

_PROBE = """
import sys, time
started = time.perf_counter()
import costbrake.gateway.asgi as asgi
imported = time.perf_counter()
app = asgi.create_app()
built = time.perf_counter()
sdks = sorted(name for name in ("openai", "anthropic") if name in sys.modules)
print(__import__("json").dumps({"import_s": imported - started, "create_app_s": built - imported, "sdks": sdks,
                                "modules": len(sys.modules)}))
"""


def _run(command: list[str], **kwargs: Any) -> None:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def build_layer(target: Path) -> Path:
    """layers/deps/Makefile's build, for this platform's wheels; returns the layer's python/ directory."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    _run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(REPO / "layers" / "deps" / "Makefile"),
            "build-DependencyLayer",
            f"ARTIFACTS_DIR={target}",
            f"PYTHON={sys.executable}",
            "PIP_TARGET_FLAGS=--only-binary=:all:",
        ],
        timeout=600,
    )
    return target / "python"


def build_runtime(target: Path) -> Path:
    """The runtime's boto3 stack at the venv's versions, with bytecode (cached between runs)."""
    pins = [f"{name}=={metadata.version(name)}" for name in RUNTIME_PACKAGES]
    marker = target / "pins.json"
    if marker.is_file() and json.loads(marker.read_text()) == pins:
        return target / "python"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target / "python"),
            *pins,
        ],
        timeout=600,
    )
    _run([sys.executable, "-m", "compileall", "-q", "-j0", str(target / "python")], timeout=600)
    marker.write_text(json.dumps(pins))
    return target / "python"


def _probe(layer: Path, runtime: Path, importtime: bool = False) -> tuple[dict[str, Any], str]:
    environment = {
        "COSTBRAKE_LEDGER_TABLE": "bench-ledger",
        "COSTBRAKE_CALLS_TABLE": "bench-calls",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "COSTBRAKE_OPENAI_API_KEY": "sk-bench",
        "COSTBRAKE_ANTHROPIC_API_KEY": "sk-ant-bench",
    }
    code = f"import sys; sys.path[:0] = [{str(layer)!r}, {str(runtime)!r}]\n" + _PROBE
    command = [sys.executable, "-I", "-S", *(["-X", "importtime"] if importtime else []), "-c", code]
    result = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=120, cwd=tempfile.gettempdir()
    )
    if result.returncode != 0:
        raise RuntimeError(f"the Lambda-like import failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def _top_packages(importtime_log: str, count: int = 6) -> list[tuple[str, float]]:
    """Import time by top-level package (the modules' own times summed), from ``-X importtime``'s log."""
    totals: dict[str, float] = {}
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue
        top = name.strip().split(".")[0]
        totals[top] = totals.get(top, 0.0) + int(own) / 1e6
    return sorted(totals.items(), key=lambda pair: -pair[1])[:count]


def measure(runs: int = 5) -> dict[str, Any]:
    layer = build_layer(CACHE / "layer")
    runtime = build_runtime(CACHE / "runtime")
    samples = [_probe(layer, runtime)[0] for _ in range(runs)]
    best = min(samples, key=lambda sample: sample["import_s"] + sample["create_app_s"])
    _, log = _probe(layer, runtime, importtime=True)
    return {
        "import_s": best["import_s"],
        "create_app_s": best["create_app_s"],
        "total_s": best["import_s"] + best["create_app_s"],
        "sdks_imported": best["sdks"],
        "modules": best["modules"],
        "top_packages": _top_packages(log),
        "runs": runs,
    }


if __name__ == "__main__":
    print(measure())

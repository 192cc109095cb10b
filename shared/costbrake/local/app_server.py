"""The gateway app on loopback under uvicorn: in a process of its own (`costbrake local`) or in a thread (tests).

``AppProcess`` runs what the Lambda runs (functions/gateway/run.sh): uvicorn with the factory
``costbrake.gateway.asgi:create_app``, which wires the gateway from validated ``COSTBRAKE_*`` settings — here
the environment the local stack hands it (``settings_environment``). Its interpreter serves requests and
nothing else: moto's server and the pipeline's pollers and schedules run in other processes.

``AppServer`` serves an app built in the caller's process (``build_app(gateway)``) from a thread, so tests can
reach into that gateway (its caches, its ledger client) while the same app code answers over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

import uvicorn
from pydantic import SecretStr

from costbrake.config import Settings
from costbrake.local.child_process import ChildProcess, exit_with_parent

APP_FACTORY = "costbrake.gateway.asgi:create_app"
HEALTH_PATH = "/healthz"  # costbrake.gateway.asgi.HEALTH_PATH, the Lambda Web Adapter's readiness check
_UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "lifespan": "off",
    "timeout_keep_alive": 30,
}


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class AppServer:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = _bound_socket(host, port)
        self.url = _url(self._socket)
        config = uvicorn.Config(app, **_UVICORN_OPTIONS)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return os.getpid()

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="costbrake-gateway", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the gateway app did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()


class AppProcess:
    """``uvicorn --factory costbrake.gateway.asgi:create_app`` in a child process, on a socket bound here."""

    def __init__(
        self,
        environment: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        factory: str = APP_FACTORY,
        output: int | IO[Any] | None = None,
    ) -> None:
        self._environment = dict(environment)
        self._socket = _bound_socket(host, port)  # bound here: the port is known (and taken) before the child runs
        self._socket.set_inheritable(True)
        self.url = _url(self._socket)
        self._factory = factory
        self._output = output
        self._child: ChildProcess | None = None

    @property
    def pid(self) -> int:
        assert self._child is not None, "start() first"
        return self._child.pid

    def start(self, timeout: float = 60.0) -> str:
        import httpx

        fd = self._socket.fileno()
        command = [sys.executable, "-m", "costbrake.local.app_server", "--fd", str(fd), "--factory", self._factory]
        self._child = ChildProcess(
            command, "the gateway app", env=self._environment, stdout=self._output, pass_fds=[fd]
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not self._child.alive():
                    raise RuntimeError("the gateway app exited at start (its error is printed above)")
                try:
                    if client.get(self.url + HEALTH_PATH).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the gateway app did not answer {HEALTH_PATH} within {timeout:g} s")
                time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None
        self._socket.close()


def settings_environment(settings: Settings) -> dict[str, str]:
    """``COSTBRAKE_*`` variables from which ``Settings()`` reads these very settings back (secrets included)."""
    environment: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Decimal):
            text = format(value, "f")
        elif isinstance(value, dict | list | tuple):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        environment[f"COSTBRAKE_{name.upper()}"] = text
    return environment


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The gateway app under uvicorn, for costbrake local")
    parser.add_argument("--fd", type=int, required=True, help="a bound TCP socket inherited from the parent")
    parser.add_argument("--factory", default=APP_FACTORY)
    args = parser.parse_args(argv)
    exit_with_parent()
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(args.factory, factory=True, **_UVICORN_OPTIONS)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

"""moto's HTTP server on loopback, with each request applied atomically, in a process of its own.

moto's backends keep no locks, so under a threaded server two TransactWriteItems could interleave their
condition checks and writes. Real DynamoDB applies every request atomically; a lock around the WSGI app
restores that property (and matches DESIGN's "moto serializes everything").

By default the server runs in a child process (``python -m costbrake.local.moto_server``): emulating DynamoDB
costs CPU, and in the caller's interpreter it would compete for the GIL with the gateway's requests and the
pipeline's pollers. ``in_process=True`` keeps the old thread (nothing else needs it; kept for debugging).
The child ends when its parent does: it watches its stdin, a pipe from the parent, for end of file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from costbrake.local.child_process import ChildProcess, exit_with_parent

_READY = "costbrake-moto-listening "


# Requests answered by moto's handler directly, as moto's in-process mock does, not through its Flask app: the
# WSGI dispatch (per-host app, URL routing, response conversion) was about a quarter of the server's CPU per
# DynamoDB request. Every other service goes through moto's WSGI app.
_DIRECT_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")


class _AtomicApp:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))

    def direct(self, method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, list[Any], bytes]:
        """A DynamoDB or DynamoDB Streams request straight to moto's handler (``_DIRECT_TARGETS``)."""
        from moto.core.exceptions import HTTPException
        from moto.core.request import Request
        from moto.dynamodb.responses import DynamoHandler
        from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

        request = Request.from_primitives(method, url, headers, body)
        streams = headers.get("x-amz-target", headers.get("X-Amz-Target", "")).startswith("DynamoDBStreams")
        handler = DynamoDBStreamsHandler.dispatch if streams else DynamoHandler.dispatch
        with self._lock:
            try:
                status, reply_headers, reply = handler(request, request.raw_url, request.headers)
            except HTTPException as error:
                status, reply_headers, reply = error.code, error.get_headers(), error.get_body()
        pairs = list(reply_headers.items()) if hasattr(reply_headers, "items") else list(reply_headers)
        return int(status), pairs, reply.encode() if isinstance(reply, str) else bytes(reply or b"")


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive in front of moto's WSGI app.

    werkzeug's development server (what moto's own server uses) closes the connection after every response, so
    every DynamoDB request paid for a new TCP connection and a new thread on both sides. botocore's requests
    carry a Content-Length and are read whole here, so the connection can safely serve the next one.
    """

    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per DynamoDB request would bury what `costbrake local` prints

    def _serve(self) -> None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.send_error(411, "Length Required")  # botocore never sends chunked bodies to these APIs
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        if self.headers.get("x-amz-target", "").startswith(_DIRECT_TARGETS):
            url = f"http://{host!s}:{port}{self.path}"
            code, headers, payload = self.server.app.direct(self.command, url, dict(self.headers.items()), body)
            self._reply(code, headers, payload)
            return
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        reply: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            reply["status"], reply["headers"] = status, headers
            return lambda _data: None

        chunks = self.server.app(environ, start_response)
        payload = b"".join(chunks)
        code, _, _reason = reply["status"].partition(" ")
        self._reply(int(code), reply["headers"], payload)

    def _reply(self, code: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(code)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()  # buffered (wbufsize below): headers and body leave in one segment
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: _AtomicApp) -> None:
        super().__init__(address, _KeepAliveHandler)
        self.app = app
        self.undo_patches: Callable[[], None] = lambda: None


def _make_server(host: str, port: int) -> _Server:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from costbrake.local import moto_fixes, moto_speedups

    # Patches moto for the whole process: its own server process keeps them; stop() undoes an in-process server's.
    undo_fixes, undo_speedups = moto_fixes.install(), moto_speedups.install()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    # moto matches the Host header against every service's URL patterns on each request: remember the answers.
    dispatcher.get_backend_for_host = functools.lru_cache(maxsize=64)(dispatcher.get_backend_for_host)  # type: ignore[method-assign]
    server = _Server((host, port), _AtomicApp(dispatcher))

    def undo_patches() -> None:
        undo_speedups()
        undo_fixes()

    server.undo_patches = undo_patches
    return server


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, in_process: bool = False) -> None:
        self._host = host
        self._port = port
        self._in_process = in_process
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._child: ChildProcess | None = None
        self._url: str | None = None

    def start(self) -> str:
        if importlib.util.find_spec("moto") is None:
            # Here, not in the child: the CLI turns this into "pip install 'costbrake[local]'".
            raise ModuleNotFoundError("No module named 'moto'", name="moto")
        if self._in_process:
            self._server = _make_server(self._host, self._port)
            self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
            self._thread.start()
            host, port = self._server.server_address[:2]
            self._url = f"http://{host!s}:{port}"
            return self._url
        command = [sys.executable, "-m", "costbrake.local.moto_server", "--host", self._host, "--port", str(self._port)]
        self._child = ChildProcess(command, "moto's server", stdout=subprocess.PIPE)
        line = self._child.read_line(timeout=60)
        if not line.startswith(_READY):
            self._child.stop()
            raise RuntimeError(f"moto's server did not start: {line!r}")
        self._url = line.removeprefix(_READY).strip()
        return self._url

    @property
    def url(self) -> str:
        assert self._url is not None, "start() first"
        return self._url

    @property
    def pid(self) -> int:
        return self._child.pid if self._child is not None else os.getpid()

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.undo_patches()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server for costbrake local (a child process)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    exit_with_parent()
    server = _make_server(args.host, args.port)
    host, port = server.server_address[:2]
    print(f"{_READY}http://{host!s}:{port}", flush=True)
    os.dup2(2, 1)  # nobody reads the readiness pipe any more: anything printed later goes to stderr
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()

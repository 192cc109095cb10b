"""The local stack's child processes (moto's server, the gateway app): started, watched and stopped by the parent.

A child runs in a session of its own, so a Ctrl-C in the terminal reaches only the parent, which stops its
children in order (the pipeline first, then the servers it reads). Its stdin is a pipe from the parent: a child
calls ``exit_with_parent()`` and ends when that pipe closes, so a parent killed outright leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any


class ChildProcess:
    def __init__(
        self,
        command: Sequence[str],
        name: str,
        *,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[Any] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.name = name
        self._process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=stdout,
            env=dict(env) if env is not None else None,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def read_line(self, timeout: float) -> str:
        """The child's next line on stdout (its readiness line); '' if it ended or said nothing in time."""
        stream = self._process.stdout
        assert stream is not None, "started without stdout=PIPE"
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return lines[0] if lines else ""

    def stop(self, timeout: float = 10.0) -> None:
        process = self._process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def exit_with_parent() -> None:
    """In a child: end this process (SIGTERM, so servers shut down as usual) when the parent's pipe closes."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()

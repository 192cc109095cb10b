"""Scheduled functions of the local stack (EventBridge `rate(...)` rules in AWS)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Every:
    """Calls ``job`` every ``seconds`` in a daemon thread until stopped; a failing run is logged, not fatal."""

    def __init__(self, seconds: float, job: Callable[[], object], name: str) -> None:
        self._seconds = seconds
        self._job = job
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Every:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._seconds):
            try:
                self._job()
            except Exception:
                logger.exception("scheduled job %s failed", self._thread.name)

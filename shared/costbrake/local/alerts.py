"""How `costbrake local` shows alerts: published to the (moto) SNS topic and printed readably."""

from __future__ import annotations

from collections.abc import Callable

from costbrake.pipeline.alerts import Alert, Publisher


class PrintingPublisher:
    def __init__(self, inner: Publisher, echo: Callable[[str], None] = print) -> None:
        self._inner = inner
        self._echo = echo
        self.published: list[Alert] = []

    def publish(self, alert: Alert) -> None:
        self._inner.publish(alert)
        self.published.append(alert)
        self._echo(f"[ALERT {alert.severity.upper()}] {alert.type} {alert.scope} {alert.window.key}: {alert.summary}")

"""A POST sent without any SDK: for what the SDKs would refuse to send or would hide (raw status and JSON)."""

from __future__ import annotations

import http.client
import json
from typing import Any


def raw_post(base_url: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()

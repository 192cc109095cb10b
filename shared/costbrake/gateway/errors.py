"""Domain errors as each provider's own error JSON, so the official SDKs raise their usual exceptions."""

from __future__ import annotations

import json

from costbrake.errors import CostbrakeError


def openai_error_body(error: CostbrakeError) -> str:
    return json.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.openai_type,
                "param": error.param,
                "code": error.code,
            }
        }
    )


def anthropic_error_body(error: CostbrakeError) -> str:
    return json.dumps({"type": "error", "error": {"type": error.anthropic_type, "message": error.message}})

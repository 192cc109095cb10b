"""Request validation for the mock provider: refuse what the real APIs refuse, in their words.

``invalid_request`` dispatches to ``mock_chat_validation`` (OpenAI chat completions) and
``mock_messages_validation`` (Anthropic Messages); ``mock_problems`` words the refusals.

Sources (checked for these modules): the request types of the official SDKs pinned here (``openai`` 3.x
``types/chat/completion_create_params.py`` and the ``chat_completion_*_message_param.py`` files;
``anthropic`` 2.x ``types/message_create_params.py``, ``content_block_param.py``,
``beta/beta_content_block_param.py``, ``thinking_config_enabled_param.py``), the Claude API errors page
(platform.claude.com/docs/en/api/errors: ``{"type": "error", "error": {"type", "message"}, "request_id"}``)
and the 400 bodies the real APIs return, as quoted in public issue threads (OpenAI:
``{"error": {"message", "type": "invalid_request_error", "param", "code"}}`` with codes such as
``missing_required_parameter``, ``invalid_type``, ``invalid_value``, ``empty_array``,
``integer_below_min_value``, ``unsupported_parameter``).

The rule is "refuse exactly what the real API refuses and no more": where the mock is unsure it accepts,
and each such choice is commented. Unknown top-level fields are accepted by both dialects here (the real
OpenAI API refuses them with ``unknown_parameter``; the gateway's tests forward unknown fields on purpose).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from costbrake.local.mock_chat_validation import invalid_chat_request
from costbrake.local.mock_messages_validation import invalid_messages_request
from costbrake.local.mock_problems import Problem

Dialect = Literal["openai", "anthropic"]


def invalid_request(dialect: Dialect, headers: Mapping[str, str], body: Any) -> Problem | None:
    if not isinstance(body, Mapping):
        return Problem("We could not parse the JSON body of your request: expected a JSON object.")
    if dialect == "openai":
        return invalid_chat_request(body)
    if not headers.get("anthropic-version"):
        return Problem("anthropic-version: header is required")
    return invalid_messages_request(body)

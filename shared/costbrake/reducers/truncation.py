"""History truncation: fit a conversation into a feature's input budget by dropping its oldest turns.

Kept always: the system prompt (Anthropic ``system``, Responses ``instructions``, and every OpenAI
system/developer message, wherever it stands) and the last user turn: the last user message that is not only
tool results, with everything after it (the assistant's tool calls and their results in progress).

Dropped, oldest first, in *units* that are never split: a message alone, or a tool call with its results
(an OpenAI assistant message with ``tool_calls`` and the ``tool`` messages answering it; an Anthropic
assistant message with ``tool_use`` blocks and the next user message's ``tool_result`` blocks; a Responses
``*_call`` item with its ``*_call_output`` items, and reasoning items with what follows them). After a drop
the remaining history starts at a user message: an answer whose question is gone goes with it.

The fewest units are dropped that make the estimate fit (a binary search: a few estimates, not one per
message). ``HistoryTooLong`` when even the system prompt and the last user turn alone do not fit.
The estimate's ``tokens`` are compared with the budget; unsized parts (files, audio) are the gateway's
concern: truncation cannot size them either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costbrake.providers.base import CHAT_COMPLETIONS, MESSAGES, RESPONSES
from costbrake.tokens import (
    InputEstimate,
    estimate_anthropic_input_tokens,
    estimate_openai_input_tokens,
    estimate_openai_responses_input_tokens,
)

Estimator = Callable[[Mapping[str, Any]], InputEstimate]

_ESTIMATORS: dict[str, Estimator] = {
    CHAT_COMPLETIONS: estimate_openai_input_tokens,
    MESSAGES: estimate_anthropic_input_tokens,
    RESPONSES: estimate_openai_responses_input_tokens,
}
_HISTORY_FIELD = {CHAT_COMPLETIONS: "messages", MESSAGES: "messages", RESPONSES: "input"}
_PINNED_ROLES = frozenset({"system", "developer"})
_REASONING = "\x00reasoning"  # a Responses reasoning item "opens" this: it stays with the item after it


class HistoryTooLong(ValueError):
    """Even the system prompt and the last user turn exceed the input budget."""

    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(
            f"the system prompt and the last user turn alone are about {tokens} input tokens; "
            f"the feature allows {budget}"
        )
        self.tokens = tokens
        self.budget = budget


@dataclass(frozen=True)
class Truncation:
    body: dict[str, Any]  # the request body to send (the original's fields, a shorter history)
    dropped: int  # messages (or Responses input items) dropped; 0 when the body fitted as it was
    tokens: int  # the estimate of ``body``


def truncate_history(
    api: str,
    body: Mapping[str, Any],
    input_budget_tokens: int,
    estimate: Estimator | None = None,
) -> Truncation:
    """``body`` with its oldest turns dropped until its estimated input fits ``input_budget_tokens``.

    ``estimate`` defaults to the API's estimator in ``costbrake.tokens``. ValueError for an API without a
    history; HistoryTooLong when nothing that may be dropped makes it fit.
    """
    if api not in _HISTORY_FIELD:
        raise ValueError(f"the {api} API has no history to truncate")
    estimate = estimate or _ESTIMATORS[api]
    tokens = estimate(body).tokens
    if tokens <= input_budget_tokens:
        return Truncation(dict(body), 0, tokens)
    field = _HISTORY_FIELD[api]
    items = body.get(field)
    if not isinstance(items, list):
        raise HistoryTooLong(tokens, input_budget_tokens)
    droppable = _droppable_units(api, items)

    def attempt(count: int) -> tuple[dict[str, Any], int, int]:
        removed = _removed(api, items, droppable, count)
        kept = [item for index, item in enumerate(items) if index not in removed]
        candidate = {**body, field: kept}
        return candidate, len(removed), estimate(candidate).tokens

    # The smallest count of units that fits, by binary search over 1..len(droppable).
    low, high = 1, len(droppable)
    best: tuple[dict[str, Any], int, int] | None = None
    while low <= high:
        middle = (low + high) // 2
        candidate = attempt(middle)
        if candidate[2] <= input_budget_tokens:
            best, high = candidate, middle - 1
        else:
            low = middle + 1
    if best is None:
        floor = attempt(len(droppable))[2] if droppable else tokens
        raise HistoryTooLong(floor, input_budget_tokens)
    return Truncation(*best)


def _removed(api: str, items: Sequence[Any], droppable: Sequence[list[int]], count: int) -> set[int]:
    """Indexes removed when the ``count`` oldest units go, with the units after them up to a user message."""
    removed = {index for unit in droppable[:count] for index in unit}
    for unit in droppable[count:]:
        if _starts_user_turn(api, items[unit[0]]):
            break
        removed.update(unit)
    return removed


def _droppable_units(api: str, items: Sequence[Any]) -> list[list[int]]:
    """The history's units (lists of indexes) before the one holding the last user turn; pinned messages are in
    no unit."""
    units = _units(api, items)
    last_turn = _last_user_turn(api, items)
    if last_turn is None:  # no user message at all: keep the last unit
        return units[:-1]
    return [unit for unit in units if max(unit) < last_turn and last_turn not in unit]


def _last_user_turn(api: str, items: Sequence[Any]) -> int | None:
    starts = [index for index, item in enumerate(items) if _starts_user_turn(api, item)]
    if starts:
        return starts[-1]
    users = [index for index, item in enumerate(items) if isinstance(item, Mapping) and item.get("role") == "user"]
    return users[-1] if users else None


def _units(api: str, items: Sequence[Any]) -> list[list[int]]:
    """Consecutive non-pinned items, grouped so that every call opened in a unit is answered in it."""
    indexes = [index for index, item in enumerate(items) if not _pinned(api, item)]
    units: list[list[int]] = []
    position = 0
    while position < len(indexes):
        unit = [indexes[position]]
        open_calls = _opens(api, items[indexes[position]]) - _closes(api, items[indexes[position]])
        position += 1
        while open_calls and position < len(indexes):
            item = items[indexes[position]]
            if not _closes(api, item) & open_calls and _REASONING not in open_calls:
                break  # an unanswered call (an invalid history): the next item starts a unit of its own
            open_calls = (open_calls - _closes(api, item) - {_REASONING}) | _opens(api, item)
            unit.append(indexes[position])
            position += 1
        units.append(unit)
    return units


def _pinned(api: str, item: Any) -> bool:
    return api != MESSAGES and isinstance(item, Mapping) and item.get("role") in _PINNED_ROLES


def _starts_user_turn(api: str, item: Any) -> bool:
    """A user message that is not only tool results (Anthropic returns those in user messages)."""
    if not isinstance(item, Mapping) or item.get("role") != "user":
        return False
    if api == RESPONSES:
        return item.get("type", "message") == "message"
    if api == MESSAGES:
        content = item.get("content")
        if isinstance(content, list):
            return any(not (isinstance(block, Mapping) and block.get("type") == "tool_result") for block in content)
    return True


def _opens(api: str, item: Any) -> set[str]:
    """Ids of the tool calls ``item`` makes (answered by a later item)."""
    if not isinstance(item, Mapping):
        return set()
    if api == CHAT_COMPLETIONS:
        if item.get("role") != "assistant":
            return set()
        calls = item.get("tool_calls")
        ids = {str(call.get("id")) for call in calls if isinstance(call, Mapping)} if isinstance(calls, list) else set()
        return ids | ({"\x00function"} if item.get("function_call") else set())
    if api == MESSAGES:
        if item.get("role") != "assistant" or not isinstance(item.get("content"), list):
            return set()
        return {str(b.get("id")) for b in item["content"] if isinstance(b, Mapping) and b.get("type") == "tool_use"}
    kind = str(item.get("type") or "")
    if kind == "reasoning":
        return {_REASONING}
    if kind.endswith("_call") and item.get("call_id") is not None:
        return {str(item["call_id"])}
    return set()


def _closes(api: str, item: Any) -> set[str]:
    """Ids of the tool calls ``item`` answers."""
    if not isinstance(item, Mapping):
        return set()
    if api == CHAT_COMPLETIONS:
        if item.get("role") == "tool":
            return {str(item.get("tool_call_id"))}
        return {"\x00function"} if item.get("role") == "function" else set()
    if api == MESSAGES:
        if item.get("role") != "user" or not isinstance(item.get("content"), list):
            return set()
        blocks = item["content"]
        return {str(b.get("tool_use_id")) for b in blocks if isinstance(b, Mapping) and b.get("type") == "tool_result"}
    if str(item.get("type") or "").endswith("_call_output") and item.get("call_id") is not None:
        return {str(item["call_id"])}
    return set()

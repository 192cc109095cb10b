"""Why the mock provider refuses a request (``Problem``), and OpenAI's wording of the common refusals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """Why a request is refused: the message, and for OpenAI the ``param`` and ``code`` fields."""

    message: str
    param: str | None = None
    code: str | None = None


def _missing(param: str) -> Problem:
    return Problem(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> Problem:
    return Problem(
        f"Invalid type for '{param}': expected {expected}, but got {_json_kind(value)} instead.", param, "invalid_type"
    )


def _empty_array(param: str) -> Problem:
    return Problem(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        param,
        "empty_array",
    )


def _bad_value(param: str, value: Any, allowed: Sequence[str]) -> Problem:
    quoted = [f"'{option}'" for option in allowed]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    return Problem(f"Invalid value: '{value}'. Supported values are: {listed}.", param, "invalid_value")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"

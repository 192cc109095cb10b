"""Names that select budgets: feature names and end-user ids, each brought to one canonical spelling or refused.

A budget, a switch or a block applies to a name. If two spellings of a name could reach two counters, a caller
would escape the one by writing the other (``Chat``, ``chat ``, ``victim\\u200b``), so every name is reduced to a
single canonical form wherever it enters: the gateway's headers and request bodies, the CLI, operator actions.

- Feature names: NFKC, trimmed, lower-cased, then ``[a-z0-9_-]``, 1 to 64 characters.
- End-user ids: trimmed, only printable characters (no control or format characters such as a zero-width space or
  bidi marks, no line or paragraph separators), NFC, case-folded, then at most 128 bytes of UTF-8. Case-folding
  merges ids that differ only in case: two ids sharing one budget is stricter, never looser.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

FEATURE_NAME_MAX = 64
USER_ID_MAX_BYTES = 128
FEATURE_NAME_RULE = "1-64 characters of a-z, 0-9, '_' and '-'"
_FEATURE_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_SHOWN = 40  # characters of a refused value quoted back in a message (a name may be kilobytes long)
# Printable ASCII but '%': what a header value carries as is (percent-encoding escapes everything else).
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


class InvalidName(ValueError):
    """A feature name or user id that has no canonical form; ``field`` says where it came from."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def shown(value: str) -> str:
    """``value`` quoted for a message, cut short and with invisible characters made visible."""
    cut = value[:_SHOWN]
    return ascii(cut) + ("..." if len(value) > _SHOWN else "")


def canonical_feature(raw: str, field: str = "feature") -> str:
    """The canonical spelling of a feature name: ``" Chat "`` -> ``"chat"``; InvalidName if there is none."""
    name = unicodedata.normalize("NFKC", raw).strip().lower()
    if not _FEATURE_NAME.fullmatch(name):
        raise InvalidName(f"{field} {shown(raw)} is not a feature name ({FEATURE_NAME_RULE}).", field)
    return name


def is_canonical_feature(name: str) -> bool:
    return _FEATURE_NAME.fullmatch(name) is not None


# Characters that render as nothing but are "printable" to Python: default-ignorable code points, Hangul fillers,
# the braille blank. An id holding one looks like another id (a block escaped by spelling).
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001d159\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def canonical_user_id(raw: str, field: str = "user") -> str:
    """The canonical spelling of an end-user id: ``" VICTIM "`` -> ``"victim"``; InvalidName if there is none."""
    text = raw.strip()
    if not text:
        raise InvalidName(f"{field} must not be empty.", field)
    bad = next((char for char in text if not char.isprintable() or _INVISIBLE.match(char)), None)
    if bad is not None:
        raise InvalidName(
            f"{field} {shown(raw)} contains the unprintable character U+{ord(bad):04X} "
            f"({unicodedata.name(bad, unicodedata.category(bad))}); end-user ids must be printable text.",
            field,
        )
    # NFKC: compatibility forms (fullwidth, ligatures, circled letters) are the letters they stand for.
    user_id = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    size = len(user_id.encode())
    if size > USER_ID_MAX_BYTES:
        raise InvalidName(
            f"{field} {shown(raw)} is {size} bytes of UTF-8; end-user ids are at most {USER_ID_MAX_BYTES}.", field
        )
    return user_id


def same_user_id(stored: str) -> str:
    """A stored id (a key's bound user, maybe from before ids were canonical) in the form callers are compared in."""
    try:
        return canonical_user_id(stored)
    except InvalidName:
        return stored


def header_safe(text: str) -> str:
    """``text`` as a header value may carry it: printable ASCII kept, everything else percent-encoded (UTF-8)."""
    return quote(text, safe=_HEADER_SAFE)


__all__ = [
    "FEATURE_NAME_MAX",
    "FEATURE_NAME_RULE",
    "USER_ID_MAX_BYTES",
    "InvalidName",
    "canonical_feature",
    "canonical_user_id",
    "header_safe",
    "is_canonical_feature",
    "same_user_id",
    "shown",
]

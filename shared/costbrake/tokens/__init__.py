"""Offline input-token bounds, for reserving a call's worst-case cost before the call.

``text`` bounds the tokens of a text (the proof and the calibration are there); ``images`` bounds an image's
tokens from its header; ``openai_requests`` and ``anthropic_requests`` walk request bodies into an
``InputEstimate`` (``input_estimate``): the sized parts bounded, the parts no bound can be read from named.
"""

from costbrake.tokens.anthropic_requests import estimate_anthropic_input_tokens
from costbrake.tokens.input_estimate import InputEstimate, UnsizableInput
from costbrake.tokens.openai_requests import (
    estimate_embeddings_input_tokens,
    estimate_openai_input_tokens,
    estimate_openai_responses_input_tokens,
)
from costbrake.tokens.text import PROVIDERS, estimate_text_tokens

__all__ = [
    "PROVIDERS",
    "InputEstimate",
    "UnsizableInput",
    "estimate_anthropic_input_tokens",
    "estimate_embeddings_input_tokens",
    "estimate_openai_input_tokens",
    "estimate_openai_responses_input_tokens",
    "estimate_text_tokens",
]

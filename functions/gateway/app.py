"""Gateway Lambda: API Gateway proxy event in, OpenAI/Anthropic-shaped response out."""

from costbrake.gateway.api import lambda_handler

__all__ = ["lambda_handler"]

"""The budget-enforcing gateway: OpenAI- and Anthropic-compatible endpoints."""

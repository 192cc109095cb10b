"""costbrake: serverless LLM budget enforcer."""

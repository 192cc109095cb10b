"""Operators' actions, shared by the CLI, the local stack and the anomaly pipeline, by what they act on."""

"""Replays of traffic on a simulated clock through the real gateway, pipeline and ledger."""

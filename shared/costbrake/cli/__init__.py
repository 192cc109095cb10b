"""The `costbrake` operator CLI. Each module adds its commands to the one `main` group."""

from costbrake.cli import budgets, keys, local, switches  # noqa: F401  (registers the commands)
from costbrake.cli.main import main

__all__ = ["main"]

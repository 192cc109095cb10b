"""The `costbrake` operator CLI. Each module adds its commands to the one `main` group."""

from costbrake.cli import (  # noqa: F401  (importing a module registers its commands)
    budgets,
    estimate,
    features,
    keys,
    local,
    pricing,
    reconcile,
    report,
    status,
    switches,
    users,
)
from costbrake.cli.main import main

__all__ = ["main"]

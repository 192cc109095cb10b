"""`pip install costbrake` is the operator CLI; the local stack needs the `local` extra and says so."""

from __future__ import annotations

import builtins

import pytest
from click.testing import CliRunner
from costbrake.cli import main


@pytest.fixture
def without_moto(monkeypatch):
    """An interpreter where `pip install costbrake` left moto out."""
    real_import = builtins.__import__

    def refusing_import(name, *args, **kwargs):
        if name == "moto" or name.startswith("moto."):
            raise ModuleNotFoundError(f"No module named {name!r}", name="moto")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refusing_import)
    for module in [m for m in __import__("sys").modules if m == "moto" or m.startswith(("moto.", "costbrake.local"))]:
        monkeypatch.delitem(__import__("sys").modules, module)


def test_given_no_local_extra_when_estimating_then_the_operator_cli_works(without_moto):
    result = CliRunner().invoke(
        main,
        ["estimate", "--daily-calls", "100", "--input-tokens", "1000", "--output-tokens", "200", "--model", "gpt-4o"],
    )

    assert result.exit_code == 0, result.output


def test_given_no_moto_installed_when_costbrake_local_runs_then_it_says_which_extra_to_install(monkeypatch):
    import importlib.util

    from click.testing import CliRunner
    from costbrake.cli.main import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real_find_spec(name, *a)
    )

    result = CliRunner().invoke(main, ["local", "--port", "0", "--moto-port", "0"])

    assert result.exit_code == 1
    assert "pip install 'costbrake[local]'" in result.output and "Traceback" not in result.output

"""The wheel `pip install costbrake` gets: every package of the source tree, the data the code reads, and the
template `costbrake local` creates its tables from (a copy of the repository's, not a second schema)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "costbrake"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=300)
    (built,) = out.glob("costbrake-*.whl")
    return zipfile.ZipFile(built)


def test_given_the_wheel_then_it_holds_every_package_of_the_source_tree(wheel):
    packages = {str(init.parent.relative_to(PACKAGE.parent)) for init in PACKAGE.rglob("__init__.py")}

    names = set(wheel.namelist())

    assert {package for package in packages if f"{package}/__init__.py" not in names} == set()


def test_given_the_wheel_then_its_template_is_the_repositorys_and_its_data_files_are_there(wheel):
    assert wheel.read("costbrake/data/template.yaml") == (ROOT / "template.yaml").read_bytes()
    for data in ("prices.json", "prices_overrides.json", "token_words.json"):
        assert wheel.read(f"costbrake/data/{data}") == (PACKAGE / "data" / data).read_bytes()

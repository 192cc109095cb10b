"""`sam build` works without Docker, and the layer holds exactly what the Lambdas import, with their bytecode."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from collections.abc import Callable
from email.parser import Parser
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, TypeAlias

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

# Shipped by the Lambda python3.11 runtime (boto3 and its dependencies), so kept out of the layer.
RUNTIME_PROVIDED = frozenset(
    canonicalize_name(name)
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
)
# Used by the costbrake CLI only (click is in the layer: uvicorn, which serves the gateway, needs it).
CLI_ONLY = frozenset(canonicalize_name(name) for name in ("rich", "PyYAML"))
LAYER_PACKAGES = (
    "aws_lambda_powertools",
    "pynamodb",
    "pydantic",
    "pydantic_settings",
    "pydantic_core",
    "starlette",
    "uvicorn",
    "httpx",
    "httpcore",
    "anyio",
    "h11",
    "click",
    "costbrake",
)
# Environment markers of the Lambda runtime the layer targets.
LAMBDA_MARKER_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}
ELF_MACHINE_AARCH64 = 183
# Bytecode for the runtime's Python: CPython 3.11's magic number (importlib.util.MAGIC_NUMBER there) and file tag.
PYTHON_311_MAGIC = (3495).to_bytes(2, "little") + b"\r\n"
PYTHON_311_TAG = "cpython-311"
PYC_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked

SamRun: TypeAlias = Callable[..., CompletedProcess[str]]


def layer_requirements(repo_root: Path) -> dict[NormalizedName, Requirement]:
    lines = (repo_root / "layers" / "deps" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def installed_distributions(site_dir: Path) -> dict[NormalizedName, list[Requirement]]:
    """Name -> Requires-Dist of every distribution installed in `site_dir`."""
    distributions = {}
    for metadata_path in site_dir.glob("*.dist-info/METADATA"):
        metadata = Parser().parsestr(metadata_path.read_text(encoding="utf-8"), headersonly=True)
        requires = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
        distributions[canonicalize_name(metadata["Name"])] = requires
    return distributions


def applies_on_lambda(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(LAMBDA_MARKER_ENVIRONMENT)


def elf_machine(shared_object: Path) -> int:
    header = shared_object.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{shared_object} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def test_given_layer_requirements_when_compared_with_pyproject_then_pins_satisfy_its_ranges(
    repo_root: Path,
) -> None:
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))
    declared = [Requirement(line) for line in pyproject["project"]["dependencies"]]
    pinned = layer_requirements(repo_root)

    for requirement in pinned.values():
        assert str(requirement.specifier).startswith("=="), f"{requirement} is not pinned exactly"
    for dependency in declared:
        name = canonicalize_name(dependency.name)
        if name in RUNTIME_PROVIDED | CLI_ONLY:
            assert name not in pinned, f"{name} must not be in the layer"
            continue
        assert name in pinned, f"{name} (a runtime dependency in pyproject.toml) is missing from the layer"
        pinned_version = next(iter(pinned[name].specifier)).version
        assert dependency.specifier.contains(pinned_version), f"layer pins {pinned[name]}, pyproject says {dependency}"


@pytest.fixture(scope="module")
def build_dir(run_sam: SamRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `sam build` (makefile builds: no Docker, no container) shared by the checks below."""
    build_dir = tmp_path_factory.mktemp("sam") / "build"

    result = run_sam("build", "--template-file", "template.yaml", "--build-dir", str(build_dir), timeout=280)

    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


def test_given_template_when_sam_build_then_functions_and_layer_hold_the_runtime_code(
    build_dir: Path, repo_root: Path, template: dict[str, Any]
) -> None:
    functions = {
        name: resource["Properties"]["CodeUri"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    assert {"GatewayFunction", "ReporterFunction"} <= set(functions)
    for name, code_uri in functions.items():
        function_dir = build_dir / name
        for source in (repo_root / code_uri).glob("*.py"):
            assert (function_dir / source.name).read_bytes() == source.read_bytes(), name
        assert not (function_dir / "Makefile").exists()
    run_sh = build_dir / "GatewayFunction" / "run.sh"
    assert run_sh.read_bytes() == (repo_root / "functions" / "gateway" / "run.sh").read_bytes()
    assert run_sh.stat().st_mode & 0o755 == 0o755  # the adapter executes the handler script

    site_dir = build_dir / "DependencyLayer" / "python"
    for package in LAYER_PACKAGES:
        assert (site_dir / package / "__init__.py").is_file(), f"{package} is missing from the layer"

    native_modules = list((site_dir / "pydantic_core").glob("_pydantic_core*.so"))
    assert native_modules, "pydantic_core has no compiled module"
    for module in native_modules:
        assert "cpython-311-aarch64-linux-gnu" in module.name
        assert elf_machine(module) == ELF_MACHINE_AARCH64

    source_data = sorted(path.name for path in (repo_root / "shared" / "costbrake" / "data").glob("*.json"))
    shipped_data = sorted(path.name for path in (site_dir / "costbrake" / "data").glob("*.json"))
    assert source_data
    assert shipped_data == source_data
    assert not (site_dir / "bin").exists()

    distributions = installed_distributions(site_dir)
    assert set(distributions) == set(layer_requirements(repo_root))
    assert not set(distributions) & (RUNTIME_PROVIDED | CLI_ONLY)
    unmet = {
        f"{name} needs {requirement}"
        for name, requires in distributions.items()
        for requirement in requires
        if applies_on_lambda(requirement)
        and canonicalize_name(requirement.name) not in distributions
        and canonicalize_name(requirement.name) not in RUNTIME_PROVIDED
    }
    assert not unmet, "the layer's requirements list is not closed"


def test_given_sam_build_then_every_module_of_the_layer_has_bytecode_for_the_runtimes_python(
    build_dir: Path, repo_root: Path
) -> None:
    site_dir = build_dir / "DependencyLayer" / "python"
    sources = sorted(site_dir.rglob("*.py"))
    package = site_dir / "costbrake"
    source_package = repo_root / "shared" / "costbrake"
    shipped = {path.relative_to(package) for path in package.rglob("*.py")}
    assert shipped == {path.relative_to(source_package) for path in source_package.rglob("*.py")}
    assert len(sources) > 500  # costbrake and every dependency, not a sample
    missing = []
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{PYTHON_311_TAG}.pyc"
        if not pyc.is_file():
            missing.append(str(source.relative_to(site_dir)))
            continue
        header = pyc.read_bytes()[:16]
        assert header[:4] == PYTHON_311_MAGIC, pyc
        # Unchecked hash: used whatever mtimes the zip gives the sources (a timestamp pyc would be recompiled,
        # in memory, at every cold start, since /opt is read-only).
        assert int.from_bytes(header[4:8], "little") == PYC_UNCHECKED_HASH, pyc
        if sys.version_info[:2] == (3, 11):
            assert header[8:16] == importlib.util.source_hash(source.read_bytes()), f"{pyc} is not of {source}"
    assert not missing, f"{len(missing)} modules without bytecode, e.g. {missing[:5]}"
    orphans = [pyc for pyc in package.rglob("*.pyc") if not (pyc.parents[1] / f"{pyc.name.split('.')[0]}.py").exists()]
    assert not orphans, "bytecode of a module that is not shipped (the developer's __pycache__ was copied)"

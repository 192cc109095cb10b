"""`sam build` works without Docker or python3.13, and the layer holds exactly what the Lambdas import."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from email.parser import Parser
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, TypeAlias

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

# Shipped by the Lambda python3.13 runtime (boto3 and its dependencies), so kept out of the layer.
RUNTIME_PROVIDED = frozenset(
    canonicalize_name(name)
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
)
# Used by the costbrake CLI only.
CLI_ONLY = frozenset(canonicalize_name(name) for name in ("click", "rich", "PyYAML"))
LAYER_PACKAGES = (
    "aws_lambda_powertools",
    "pynamodb",
    "pydantic",
    "pydantic_settings",
    "pydantic_core",
    "costbrake",
)
# Environment markers of the Lambda runtime the layer targets.
LAMBDA_MARKER_ENVIRONMENT = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}
ELF_MACHINE_AARCH64 = 183

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


def test_given_template_when_sam_build_then_functions_and_layer_hold_the_runtime_code(
    run_sam: SamRun, repo_root: Path, tmp_path: Path, template: dict[str, Any]
) -> None:
    build_dir = tmp_path / "build"
    functions = {
        name: resource["Properties"]["CodeUri"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    result = run_sam("build", "--template-file", "template.yaml", "--build-dir", str(build_dir), timeout=280)

    assert result.returncode == 0, result.stdout + result.stderr

    assert {"GatewayFunction", "ReporterFunction"} <= set(functions)
    for name, code_uri in functions.items():
        function_dir = build_dir / name
        assert (function_dir / "app.py").read_bytes() == (repo_root / code_uri / "app.py").read_bytes(), name
        assert not (function_dir / "Makefile").exists()

    site_dir = build_dir / "DependencyLayer" / "python"
    for package in LAYER_PACKAGES:
        assert (site_dir / package / "__init__.py").is_file(), f"{package} is missing from the layer"

    native_modules = list((site_dir / "pydantic_core").glob("_pydantic_core*.so"))
    assert native_modules, "pydantic_core has no compiled module"
    for module in native_modules:
        assert "cpython-313-aarch64-linux-gnu" in module.name
        assert elf_machine(module) == ELF_MACHINE_AARCH64

    source_data = sorted(path.name for path in (repo_root / "shared" / "costbrake" / "data").glob("*.json"))
    shipped_data = sorted(path.name for path in (site_dir / "costbrake" / "data").glob("*.json"))
    assert source_data
    assert shipped_data == source_data
    assert not list((site_dir / "costbrake").rglob("__pycache__"))

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

"""The SAM CLI, with cfn-lint, accepts the template as it is: no errors and no warnings."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess


def test_given_template_when_sam_validate_lint_then_no_lint_rule_matches(
    run_sam: Callable[..., CompletedProcess[str]],
) -> None:
    result = run_sam("validate", "--lint", "--template-file", "template.yaml", "--region", "us-east-1")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output

"""Resolves the intrinsic functions of template.yaml that tests read: Ref and Fn::Sub, with parameter defaults."""

from __future__ import annotations

import re
from typing import Any

PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "costbrake",
}


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """Resolves Ref/Fn::Sub with parameter defaults; a resource's Ref (or attribute) is its logical id (dotted)."""
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return reference(value["Ref"], template)
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return substitute(value["Fn::Sub"], template)
    raise AssertionError(f"cannot resolve {value} in this test")


def substitute(text: str, template: dict[str, Any]) -> str:
    return re.sub(r"\$\{([^}!][^}]*)\}", lambda match: reference(match[1], template), text)


def reference(name: str, template: dict[str, Any]) -> str:
    if name in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[name]
    if name in template["Parameters"]:
        return str(template["Parameters"][name]["Default"])
    resource_name = name.split(".", 1)[0]
    assert resource_name in template["Resources"], f"{name} names neither a parameter nor a resource"
    return name

"""What a function's inline policies in template.yaml grant, and which DynamoDB requests a run really makes: a
function's role is checked to allow every request its code sends (and nothing it should not)."""

from __future__ import annotations

from typing import Any

from template_refs import resolve


def statements(function: dict[str, Any], *, admin_secret: bool = True) -> list[dict[str, Any]]:
    """The inline policies' statements, with the admin-key statement's Fn::If decided."""
    found = []
    for policy in function["Policies"]:
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                condition, when_true, when_false = statement["Fn::If"]
                assert condition == "HasAdminKeySecret" and when_false == {"Ref": "AWS::NoValue"}
                if not admin_secret:
                    continue
                statement = when_true
            found.append(statement)
    return found


def grants(function: dict[str, Any], template: dict[str, Any], *, admin_secret: bool = True) -> set[tuple[str, str]]:
    """(action, resolved resource) pairs the function's inline policies allow."""
    pairs = set()
    for statement in statements(function, admin_secret=admin_secret):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs |= {(action, _arn(resource, template)) for action in actions for resource in resources}
    return pairs


def _arn(resource: Any, template: dict[str, Any]) -> str:
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    resolved: str = resolve(resource, template)
    return resolved


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class DynamoRequests:
    """The (action, table resource) of every DynamoDB request sent through the clients it watches, and the
    partition keys of the items written or keyed."""

    def __init__(self, tables: dict[str, str]) -> None:
        self._logical_ids = {physical: logical for logical, physical in tables.items()}
        self.requests: set[tuple[str, str]] = set()
        self.keys: list[str] = []

    def watch(self, *clients: Any) -> DynamoRequests:
        for client in {id(c): c for c in clients}.values():
            client.meta.events.register("before-parameter-build.dynamodb", self._record)
        return self

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "TransactWriteItems":
            # IAM checks each item of a transaction as the single-item action it is.
            for entry in params["TransactItems"]:
                [(action, body)] = entry.items()
                table = self._logical_ids[body["TableName"]]
                self.requests.add((f"dynamodb:{_TRANSACT_ACTIONS[action]}", f"{table}.Arn"))
            return
        names = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
        for name in names:
            index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
            self.requests.add((f"dynamodb:{model.name}", f"{self._logical_ids[name]}.Arn{index}"))
        if "Item" in params or "Key" in params:
            self.keys.append((params.get("Item") or params["Key"])["pk"]["S"])

"""The PynamoDB models and template.yaml describe the same tables (the template is the source of truth)."""

from __future__ import annotations

from typing import Any

import pytest
from costbrake.dal import models
from costbrake.dal.cache import CACHE_MODELS
from costbrake.local.template import table_specs
from pynamodb.models import Model


def _model_keys(model: type[Model]) -> dict[str, tuple[str, str]]:
    schema = model._get_schema()
    types = {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
    return {k["KeyType"]: (k["AttributeName"], types[k["AttributeName"]]) for k in schema["key_schema"]}


def _template_keys(spec: dict[str, Any], key_schema: list[dict[str, str]]) -> dict[str, tuple[str, str]]:
    types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
    return {k["KeyType"]: (k["AttributeName"], types[k["AttributeName"]]) for k in key_schema}


@pytest.mark.parametrize("model", models.ALL_MODELS, ids=lambda m: m.__name__)
def test_given_model_when_compared_with_its_template_table_then_keys_agree(template, model):
    spec = table_specs(template)[model.TEMPLATE_TABLE]

    assert _model_keys(model) == _template_keys(spec, spec["KeySchema"])


def test_given_reservation_index_when_compared_with_template_then_name_keys_and_projection_agree(template):
    spec = table_specs(template)["LedgerTable"]
    model_index = models.UserSpendItem._get_schema()["global_secondary_indexes"][0]
    (index,) = [i for i in spec["GlobalSecondaryIndexes"] if i["IndexName"] == model_index["index_name"]]

    assert index["IndexName"] == model_index["index_name"]
    model_keys = {k["KeyType"]: k["AttributeName"] for k in model_index["key_schema"]}
    assert model_keys == {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
    assert index["Projection"]["ProjectionType"] == model_index["projection"]["ProjectionType"]
    types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
    assert (types["sweep_bucket"], types["release_after"]) == ("S", "N")


def test_given_ttl_attributes_when_compared_then_models_use_the_template_names(template):
    specs = table_specs(template)

    assert specs["LedgerTable"]["TimeToLiveAttribute"] == "expires_at" == models.CounterItem.expires_at.attr_name
    assert specs["CallsTable"]["TimeToLiveAttribute"] == "expires_at" == models.CallItem.expires_at.attr_name
    assert specs["CallsTable"]["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}


def test_given_rollup_index_when_compared_with_template_then_keys_and_projection_agree(template):
    from costbrake.dal.rollups import RollupItem

    spec = table_specs(template)["LedgerTable"]
    model_index = RollupItem._get_schema()["global_secondary_indexes"][0]
    (index,) = [i for i in spec["GlobalSecondaryIndexes"] if i["IndexName"] == model_index["index_name"]]

    model_keys = {k["KeyType"]: k["AttributeName"] for k in model_index["key_schema"]}
    assert model_keys == {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
    assert sorted(index["Projection"]["NonKeyAttributes"]) == sorted(model_index["projection"]["NonKeyAttributes"])


@pytest.mark.parametrize("model", CACHE_MODELS, ids=lambda m: m.__name__)
def test_given_cache_model_when_compared_with_the_cache_table_then_keys_and_ttl_agree(template, model):
    spec = table_specs(template)[model.TEMPLATE_TABLE]

    assert model.TEMPLATE_TABLE == "ResponseCacheTable"
    assert _model_keys(model) == _template_keys(spec, spec["KeySchema"])
    assert spec["TimeToLiveAttribute"] == "expires_at" == model.expires_at.attr_name

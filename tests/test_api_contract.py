"""One schema, both sides: every field the dashboard reads exists in the OpenAPI schema with its type.

`adapters/static/contract.json` declares the fields dashboard.js reads: the script reads API data
only through `val()`, which throws on an undeclared field, and the browser test fails on any
script error. This test checks the declaration against the schema the server publishes at
/schema/openapi.json, and that the check itself bites.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tradeledger.adapters.api.routes.dashboard import STATIC
from tests.composing import composed
from tests.apisupport import api_settings, serving

Schema = dict[str, Any]
REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    url = f"sqlite:///{tmp_path_factory.mktemp('contract') / 'ledger.sqlite'}"
    with composed(api_settings(url)) as container, serving(container) as base:
        document: Schema = httpx.get(f"{base}/schema/openapi.json").json()
    return document


@pytest.fixture(scope="module")
def contract() -> Schema:
    loaded: Schema = json.loads((STATIC / "contract.json").read_text())
    return loaded


def resolve(document: Schema, node: Schema) -> Schema:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].removeprefix(REF)]
    return node


def json_types(document: Schema, node: Schema) -> set[str]:
    """The JSON types a property may take ('null' included), through $ref and oneOf/anyOf."""
    node = resolve(document, node)
    alternatives = node.get("oneOf") or node.get("anyOf")
    if alternatives:
        return set().union(*(json_types(document, a) for a in alternatives))
    kind = node.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def declared_types(declaration: str) -> set[str]:
    return {declaration.rstrip("?")} | ({"null"} if declaration.endswith("?") else set())


def component_name(node: Schema) -> str | None:
    node = node.get("items", node)
    return node["$ref"].removeprefix(REF) if "$ref" in node else None


def problems(contract: Schema, document: Schema) -> list[str]:
    found: list[str] = []
    components = document["components"]["schemas"]
    for path, name in contract["endpoints"].items():
        response = document["paths"].get(path, {}).get("get", {}).get("responses", {}).get("200", {})
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if component_name(schema) != name:
            found.append(f"GET {path}: dashboard expects {name}, the schema says {component_name(schema)}")
    messages = {m["properties"]["type"].get("const"): m for m in components.values()
                if "const" in m.get("properties", {}).get("type", {})}
    for kind, name in contract["messages"].items():
        message = messages.get(kind)
        if message is None or component_name(message["properties"]["data"]) != name:
            found.append(f"message {kind!r}: dashboard expects data {name}")
    for name, fields in contract["schemas"].items():
        properties = components.get(name, {}).get("properties")
        if properties is None:
            found.append(f"{name}: not in the schema")
            continue
        for field, declaration in fields.items():
            if field not in properties:
                found.append(f"{name}.{field}: the dashboard reads it, the schema does not have it")
            elif json_types(document, properties[field]) != declared_types(declaration):
                found.append(f"{name}.{field}: the dashboard expects {declaration}, the schema says "
                             f"{sorted(json_types(document, properties[field]))}")
    return found


def test_every_field_the_dashboard_reads_is_in_the_schema_with_its_type(contract: Schema, openapi: Schema) -> None:
    assert problems(contract, openapi) == []


@pytest.mark.parametrize("mutation", ["remove a field", "change a type", "make it nullable", "rename a schema"])
def test_the_check_catches_a_schema_change(contract: Schema, openapi: Schema, mutation: str) -> None:
    changed = copy.deepcopy(openapi)
    fills = changed["components"]["schemas"]["FillView"]["properties"]
    if mutation == "remove a field":
        del fills["price"]
    elif mutation == "change a type":
        fills["price"] = {"type": "number"}
    elif mutation == "make it nullable":
        fills["fee"] = {"oneOf": [{"type": "string"}, {"type": "null"}]}
    else:
        changed["components"]["schemas"]["FillRecord"] = changed["components"]["schemas"].pop("FillView")
    assert problems(contract, changed)

"""GET /api/openapi.json: a valid OpenAPI 3.1 document that describes every /api route
the app has, and nothing it does not."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from server import openapi
from server.app import create_app
from tests.conftest import TEST_SETTINGS


def routed(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every /api route of the app (aiohttp adds HEAD to each GET)."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }  # fmt: skip


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


async def test_the_document_is_valid_openapi_3_1(app_client: Any) -> None:
    resp = await app_client.get("/api/openapi.json")  # no session needed
    assert resp.status == 200 and resp.content_type == "application/json"
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any violation of the 3.1 schema
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_every_api_route_is_described_and_nothing_else(app_client: Any) -> None:
    app = app_client.server.app
    doc = await (await app_client.get("/api/openapi.json")).json()
    missing = routed(app) - documented(doc)
    assert not missing, f"routes missing from server/openapi.py: {sorted(missing)}"
    extra = documented(doc) - routed(app)
    assert not extra, f"documented but not routed: {sorted(extra)}"


def test_a_missing_route_is_noticed(engine_url: str) -> None:
    """The check above is not vacuous: drop one operation and it is missed."""
    app = create_app(TEST_SETTINGS, engine_url)
    partial = openapi.document([op for op in openapi.OPERATIONS if op.path != "/api/search"])
    assert routed(app) - documented(partial) == {("GET", "/api/search")}


def test_request_bodies_and_errors_are_described() -> None:
    doc = openapi.document()
    post = doc["paths"]["/api/echoes"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["text"]
    assert "multipart/form-data" in doc["paths"]["/api/media"]["post"]["requestBody"]["content"]
    assert post["responses"]["default"] == {"$ref": "#/components/responses/Error"}
    assert doc["paths"]["/api/login"]["post"]["security"] == []
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]

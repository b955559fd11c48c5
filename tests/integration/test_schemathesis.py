"""Schemathesis against a live server, from GET /api/openapi.json: every operation, with
valid requests and with broken ones, signed in as an admin (so moderator endpoints go
past their role check). No answer may be a server error, and every refusal must be in
the spec's error shape. Bounded: a few examples per operation and mode (~60 s in all
on the shared development box)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from server.openapi import COMPONENTS
from tests.support import PASSWORD, Server, start_server, stop_server

EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}
ERROR = COMPONENTS["Error"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    server = start_server("--data-dir", str(tmp_path_factory.mktemp("schemathesis")))
    code = re.search(r"/join/(\S+)", server.read_output())
    assert code is not None
    resp = requests.post(f"{server.base}/api/signup", timeout=10, json={
        "invite": code.group(1), "handle": "root", "password": PASSWORD,
        "display_name": "Root", "birthdate": "1990-05-01"})  # fmt: skip
    assert resp.status_code == 201, resp.text
    yield server, resp.json()["token"]
    stop_server(server)


def fresh_token(base: str) -> str:
    resp = requests.post(f"{base}/api/login", json={"handle": "root", "password": PASSWORD},
                         timeout=10)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return str(resp.json()["token"])


def header(response: Any, name: str) -> str:
    values = response.headers.get(name.lower()) or [""]  # schemathesis: lists by name
    return str(values[0])


def check(case: Any, response: Any) -> None:
    where = (f"{case.method} {case.formatted_path} -> {response.status_code}: "
             f"{response.text[:200]!r} (body {str(case.body)[:200]!r})")
    assert response.status_code < 500, where
    if response.status_code >= 400:
        assert header(response, "Content-Type").startswith("application/json"), where
        jsonschema.validate(response.json(), ERROR)
    if response.status_code == 429:
        assert header(response, "Retry-After").isdigit(), where


def examples_of(strategy: Any, count: int) -> list[Any]:
    """`count` cases drawn by hypothesis (derandomized: the same ones on every run).

    Drawn first and sent after, so a failure names the request as it was, not after
    hypothesis shrank it through dozens more requests to a live server."""
    drawn: list[Any] = []

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # fmt: skip
    @given(strategy)
    def draw(case: Any) -> None:
        drawn.append(case)

    try:
        draw()
    except Unsatisfiable:  # nothing to break in an operation without inputs
        pass
    return drawn


def test_no_server_errors_and_every_error_in_shape(live: tuple[Server, str]) -> None:
    server, token = live
    raw = requests.get(f"{server.base}/api/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation in the document loads
        operations.append(result.ok())
    assert len(operations) >= 60
    http = requests.Session()
    calls = 0
    failures: list[str] = []
    for operation in operations:
        # Logging out would end the session every other call uses: it gets its own.
        logout = operation.path == "/api/logout"
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode)
            for case in examples_of(strategy, examples):
                bearer = fresh_token(server.base) if logout else token
                response = case.call(base_url=server.base, session=http, timeout=10,
                                     headers={"Authorization": f"Bearer {bearer}"})  # fmt: skip
                calls += 1
                try:
                    check(case, response)
                except AssertionError as exc:  # every finding at once, not only the first
                    failures.append(str(exc).splitlines()[0])
                except jsonschema.ValidationError as exc:
                    failures.append(f"{case.method} {case.formatted_path}: {exc.message}")
    output = server.read_output()
    tracebacks = output[output.find("Traceback") :][:3000] if "Traceback" in output else ""
    assert not failures, "\n".join([*sorted(set(failures)), tracebacks])
    assert calls >= 250

"""schemathesis against the admin API's served OpenAPI document, on a running gateway with
the admin key: positive and negative examples for every operation, and no answer may be
a 5xx or differ from the document (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from _gw_admin import ADMIN_KEY, gateway_thread
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}", "x-api-key": ADMIN_KEY}
"""Both spellings: schemathesis fills the `x-api-key` scheme itself otherwise (and it wins)."""
EXAMPLES = 100
"""Per operation and mode: 11 operations, about 2,200 requests, in about 40 s."""


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("fuzz") / "tenancy.db"
    with gateway_thread(f"sqlite:///{database}") as url:
        # The documented example ids name real resources, so examples reach past the 404.
        reply = requests.post(f"{url}/admin/v1/tenants", json={"id": "acme", "name": "Acme"},
                              headers=AUTH, timeout=10)
        assert reply.status_code == 201, reply.text
        yield url


@pytest.fixture(scope="module")
def admin_schema(admin_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{admin_url}/admin/v1/openapi.json", timeout=10)


# `schemathesis.pytest.from_fixture` reads `Function._nodeid`, which pytest 9.2 removed, so
# each operation's strategies are driven by Hypothesis here instead.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_the_admin_api_matches_its_document(admin_schema: schemathesis.BaseSchema,
                                            mode: GenerationMode) -> None:
    failures: list[str] = []
    for result in admin_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, timeout=10)

        try:
            fuzz()
        except Exception as exc:  # one report for every operation that fails
            failures.append(f"{operation.label}:\n{exc}")
    assert not failures, "\n\n".join(failures)


def test_the_document_is_served_without_a_key(admin_url: str) -> None:
    reply = requests.get(f"{admin_url}/admin/v1/openapi.json", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["openapi"].startswith("3.1")

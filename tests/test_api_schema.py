"""The OpenAPI schema's own rules (microfactory.schema): every operation lists its refusals with
the one error body, response fields are required unless declared optional, and enums and
nullables say what the answers hold. tests/test_api_fuzz.py checks the answers against it."""

from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from production.api.machines import REPORTED_STATES
from production.models import Machine


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def responses(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method.lower()]["responses"]
    return found


def test_every_refusal_of_every_operation_has_the_error_body(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = operation["responses"]
            assert "400" in codes, (method, path)
            for code, answer in codes.items():
                if code.startswith("4"):
                    body = answer["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, (method, path, code)
                    assert answer["description"], (method, path, code)
    assert schema["components"]["schemas"]["Error"]["required"] == ["message"]


@pytest.mark.parametrize(
    ("method", "path", "listed", "not_listed"),
    [
        ("GET", "/api/v1/orders/{order_id}/", {"401", "404"}, {"403", "413", "429"}),
        ("GET", "/api/v1/parts/", {"401"}, {"403", "404"}),
        ("GET", "/api/v1/machines/", {"401", "403"}, {"404"}),  # staff only
        ("PATCH", "/api/v1/machines/{slug}/", {"401", "403", "404", "413", "415", "429"}, set()),
        ("POST", "/api/v1/orders/", {"401", "403", "409", "413", "415", "429"}, {"404"}),
        ("POST", "/api/v1/orders/{order_id}/approve/", {"403", "404", "409"}, set()),
        ("POST", "/api/v1/machines/{slug}/telemetry/", {"401", "403", "404", "429"}, set()),
    ],
)
def test_each_operation_lists_the_refusals_it_can_give(schema, method, path, listed, not_listed):
    codes = set(responses(schema, method, path))
    assert listed <= codes
    assert not (not_listed & codes)


def test_enums_and_nullables_say_what_the_answers_hold(schema):
    components = schema["components"]["schemas"]
    assert components["MachineStateEnum"]["enum"] == Machine.State.values
    assert components["ReportedStateEnum"]["enum"] == REPORTED_STATES
    state = components["PatchedMachineChange"]["properties"]["state"]
    assert state == {"$ref": "#/components/schemas/MachineStateEnum"}
    for component, field in [
        ("JobOutput", "machine"),
        ("OrderOutput", "delivery_site"),
        ("OrderOutput", "team"),
        ("Machine", "last_seen_at"),
        ("Machine", "state_changed_at"),
        ("Machine", "progress"),
        ("Telemetry", "progress"),
    ]:
        assert components[component]["properties"][field]["nullable"] is True, (component, field)
        assert field in components[component]["required"], (component, field)
    assert "telemetry" in components["MachineDetail"]["required"]


def test_a_path_under_the_api_that_names_nothing_is_a_json_404():
    response = Client().get("/api/v1/orders/not-a-number/")
    assert response.status_code == 404
    assert response.json() == {"message": "Not found."}
    assert "<html" in Client().get("/no-such-page/").content.decode().lower()

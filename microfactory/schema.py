"""The OpenAPI schema's refusals: every operation lists the 4xx answers it can give, each with
the one error body microfactory.api.exception_handler writes (DEFAULT_SCHEMA_CLASS).

drf-spectacular describes a view's successes from its serializers, but knows nothing of the
refusals the project makes around them (bad input, authentication, roles, missing objects, body
limits, throttles). Listing them here, from what the view is (its parameters, body,
permissions and throttles), keeps every operation's list true without a decorator per view; a
view adds what only it answers (a 409, its own 429) with @extend_schema(responses=...).
Tested by tests/test_api_schema.py (the rules) and tests/test_api_fuzz.py (schemathesis).
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ErrorSerializer(serializers.Serializer[Any]):  # describes the response only
    """Every refusal's body (microfactory.api.exception_handler)."""

    message = serializers.CharField(help_text="what is wrong, in plain words")
    # DRF's metaclass takes declared fields off the class, so this does not replace
    # Serializer.errors; the stubs see only the class attribute.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        required=False,
        help_text="on a 400, what is wrong with each field: a list of messages, or the same "
        "shape again for a nested field (an order's lines)",
    )


# Why each refusal happens, as the schema says it.
REFUSALS: dict[str, str] = {
    "400": "The request has errors: `message` says what, `errors` names each field.",
    "401": "No credentials, or credentials that are not valid.",
    "403": "Authenticated, but this user (or token) may not do this.",
    "404": "No such object, or not one the caller may see (another organisation's is a 404).",
    "409": "The object is not in a state that allows this.",
    "413": "The request body is larger than MF_DATA_UPLOAD_MAX_BYTES.",
    "415": "The request body is not in a media type the operation accepts.",
    "429": "Too many requests: try again after the Retry-After header's seconds.",
}


def _optional(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    """Declared as possibly absent (read-only fields are never "required" to DRF)."""
    return field.required is False and not field.read_only


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, adding to each operation the refusals it can answer."""

    def get_operation(
        self,
        path: str,
        path_regex: str,
        path_prefix: str,
        method: str,
        registry: ComponentRegistry,
    ) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(
            path, path_regex, path_prefix, method, registry
        )
        if operation is None:
            return None
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses: dict[str, Any] = operation["responses"]
        for code in self.refusals(operation):
            responses.setdefault(
                code,
                {
                    "description": REFUSALS[code],
                    "content": {"application/json": {"schema": error}},
                },
            )
        for code, answer in responses.items():  # a view's own, declared without one
            if not answer.get("description") and code in REFUSALS:
                answer["description"] = REFUSALS[code]
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        """In a response, every field is required unless the serializer declares it with
        required=False (and not read-only): a serializer writes every field it has (null
        where allowed), so a client may count on each key. drf-spectacular would mark only
        what an input requires, leaving out a model field with a default (an order's status)."""
        # drf-spectacular leaves this method unannotated.
        schema: dict[str, Any] = super()._map_basic_serializer(  # type: ignore[no-untyped-call]
            serializer, direction
        )
        if direction == "response" and schema.get("properties"):
            declared = getattr(serializer, "_declared_fields", {})
            schema["required"] = sorted(
                name
                for name, field in schema["properties"].items()
                if not field.get("writeOnly")
                and not (name in declared and _optional(declared[name]))
            )
        return schema

    def refusals(self, operation: dict[str, Any]) -> list[str]:
        """The status codes the project's own machinery can answer this operation with."""
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        writes = self.method not in SAFE_METHODS
        codes = []
        permissions = self.view.get_permissions()
        # Bad JSON, a body nested too deeply, a field's error, a bad ?limit=, and on any
        # operation a NUL character in the query, a header or a cookie (limits.py).
        codes.append("400")
        if not all(isinstance(p, AllowAny) for p in permissions):
            codes.append("401")
            # A role that may not (staff only, approvers only), or a session's missing CSRF
            # token on a write.
            if writes or not all(type(p) is IsAuthenticated for p in permissions):
                codes.append("403")
        # An object named in the path, or in the query where the view says so (a dashboard's
        # ?site= of another factory is not found, as one that does not exist).
        if any(p["in"] == "path" for p in parameters) or getattr(
            self.view, "query_names_an_object", False
        ):
            codes.append("404")
        if has_body:
            codes += ["413", "415"]
        if writes and self.view.get_throttles():  # the throttles count writes only
            codes.append("429")
        return codes

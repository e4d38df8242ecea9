"""Input limits applied before anything is parsed: the size of a request body, the nesting depth
of a JSON body, the ids a URL may carry, the page size a list may be asked for, and NUL
characters in a request's path, query, headers or cookies.

A body nested a few thousand levels deep made json.loads raise RecursionError (a 500), and a
job id beyond 64 bits made SQLite raise OverflowError (a 500): both are refused here, once,
for every endpoint, instead of in each view.
"""

import io
import re
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.urls import register_converter
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request

# --- Request bodies ----------------------------------------------------------------------------


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "request_too_large"


def body_too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"the request body is larger than {limit} bytes")


# A JSON string, escapes included; the unrolled form never backtracks.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# +1 for an opening bracket, -1 for a closing one, indexed by byte.
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def json_depth(data: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (0 for a scalar), counting the
    brackets outside strings. Linear in the size of the text, and never recursive: it runs
    before json.loads, whose recursion is what a deep body exhausts. On a text that is not
    JSON the answer may be too high, which only refuses it earlier."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _read_bounded(stream: Any) -> bytes:
    """The body, refused (413) as soon as it passes DATA_UPLOAD_MAX_MEMORY_SIZE: DRF's JSON and
    form parsers read the stream directly, past Django's own check of that setting."""
    limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        data: bytes = stream.read()
        return data
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise body_too_large(limit)
    return data


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser, after two checks on the raw bytes: no larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE, nested no deeper than MF_JSON_MAX_DEPTH. (DRF decodes JSON
    as DEFAULT_CHARSET, UTF-8, whatever the request says: brackets and quotes are ASCII.)"""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = _read_bounded(stream)
        depth_max: int = settings.MF_JSON_MAX_DEPTH
        if json_depth(data) > depth_max:
            raise ParseError(f"the JSON body is nested deeper than {depth_max} levels")
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError as exc:  # only if MF_JSON_MAX_DEPTH is set near the stack's limit
            raise ParseError("the JSON body is nested too deeply") from exc


class LimitedFormParser(FormParser):
    """DRF's form parser, on a body no larger than DATA_UPLOAD_MAX_MEMORY_SIZE. (Multipart
    bodies go through Django's parser, which checks the setting itself.)"""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return super().parse(io.BytesIO(_read_bounded(stream)), media_type, parser_context)


# --- Ids in URLs -------------------------------------------------------------------------------

ID_MAX = 2**63 - 1  # the largest value of a BigAutoField on every database we run on


class IdConverter:
    """`<id:name>`: a database id in a path. A number past ID_MAX matches no route (404);
    `<int:...>` would pass it on, and SQLite raises OverflowError on the lookup."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)  # a digit string: ValueError only beyond Python's 4300 digits
        if number > ID_MAX:
            raise ValueError(f"{value} is beyond the largest id")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


# --- NUL characters ----------------------------------------------------------------------------


class RefuseNulMiddleware:
    """A NUL character in the path, the query, a header or a cookie is refused before any view
    reads it: PostgreSQL can neither store nor compare text containing one, so a lookup by it
    (an order filter, a preview key, an API token, a session cookie, an Idempotency-Key) was a
    500 there. HTTP allows none in a header, and no value of ours has one. A path with a NUL
    names nothing: 404 (handler404 answers it, in JSON under /api/); elsewhere 400, in JSON
    under /api/ like every API refusal. (Bodies are checked by their fields: DRF's CharField
    refuses a NUL, and JSON values are checked against the schema they must fit.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            raise Http404("the path contains a NUL character")
        carriers = (
            ("the query", [name + "".join(values) for name, values in request.GET.lists()]),
            ("a header", list(request.headers.values())),
            ("a cookie", list(request.COOKIES.values())),
        )
        for where, values in carriers:
            if any("\x00" in value for value in values):
                message = f"{where} contains a NUL character"
                if request.path.startswith("/api/"):
                    return JsonResponse({"message": message}, status=400)
                return HttpResponseBadRequest(message)
        return self.get_response(request)


# --- Pages -------------------------------------------------------------------------------------


def _count(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    """A whole-number query parameter, lowered to `maximum`; None when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationError({name: [f"must be a whole number, at least {minimum}"]})
    digits = raw.lstrip("0") or "0"
    # Compared as text first: int() refuses more than 4300 digits, SQL an offset past 64 bits.
    number = maximum if len(digits) > len(str(maximum)) else min(int(digits), maximum)
    if number < minimum:
        raise ValidationError({name: [f"must be a whole number, at least {minimum}"]})
    return number


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=`: a limit above API_PAGE_MAX_LIMIT is lowered to it (the page says so in
    its `next` link), an offset past the last row gives an empty page; a limit or offset that
    is not a whole number (or a limit of 0) is a 400, where DRF would silently ignore it."""

    def __init__(self) -> None:
        # A paginator is made per request: the setting is read then, so tests may change it.
        self.max_limit: int = settings.API_PAGE_MAX_LIMIT

    def get_limit(self, request: Request) -> int | None:
        limit = _count(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        offset = _count(request, self.offset_query_param, minimum=0, maximum=ID_MAX)
        return 0 if offset is None else offset

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated: dict[str, Any] = super().get_paginated_response_schema(schema)
        paginated["required"] = ["count", "next", "previous", "results"]  # null when no page
        return paginated

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_limit)
                parameter["description"] = (
                    f"Number of results to return per page, {self.default_limit} unless given; "
                    f"a larger value than {self.max_limit} returns {self.max_limit}."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update(minimum=0, maximum=ID_MAX)
        return parameters

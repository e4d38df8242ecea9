"""One exception handler for the API: refusals become a 4xx with a message, never a 500."""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from microfactory.errors import DomainError
from microfactory.limits import body_too_large


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    from orders.services import IdempotencyConflict, OrderInvalid

    if isinstance(exc, OrderInvalid):
        return Response({"message": str(exc), "errors": exc.errors}, status=400)
    if isinstance(exc, IdempotencyConflict):
        return Response({"message": str(exc)}, status=409)
    if isinstance(exc, DomainError):
        return Response({"message": str(exc)}, status=400)
    if isinstance(exc, RequestDataTooBig):  # a form body past DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = body_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response({"message": str(exc)}, status=400)
    if isinstance(exc, Http404):
        exc = NotFound()
    if isinstance(exc, OperationalError | InterfaceError):
        # The database went away (restarted, failed over): nothing was written, or what was
        # committed is found again by the same Idempotency-Key. Not the client's fault.
        unavailable = Response(
            {
                "message": "the database is unavailable; try again shortly (with the same "
                "Idempotency-Key, an order is placed once)"
            },
            status=503,
        )
        unavailable["Retry-After"] = "5"
        return unavailable
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"message": str(response.data["detail"])}
    elif response is not None and response.status_code == 400:
        response.data = {"message": "the request has errors", "errors": response.data}
    return response

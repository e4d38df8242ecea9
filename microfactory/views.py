from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


class ApiRoot(APIView):
    """Where the API's collections are; the full description is the OpenAPI schema."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "parts": reverse("api:parts", request=request),
                "orders": reverse("api:orders", request=request),
                "schema": reverse("api:schema", request=request),
            }
        )


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Constant, no database or cache, so a load test's
    ceiling for this server (benchmarks/web.py) and a probe that costs nothing."""
    return HttpResponse(b"ok\n", content_type="text/plain")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: under /api/, a path no route matches (`/api/v1/orders/abc/`) is answered
    like any other API 404, in JSON with a message; elsewhere, Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)

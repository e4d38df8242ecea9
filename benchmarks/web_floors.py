"""The web benchmark's floors: what any signed-in page, and any order create, costs on this
stack before it does its own work (benchmarks/web.py serves these beside the product's own
URLs; they are not in the product).

- `floor/page`: a page behind `login_required` that answers a constant: the session read, the
  user read and the middleware every signed-in page passes (second factor, lockout, CSP).
- `api/v1/floor/order-input/`: a POST with an API token whose body is checked by the order
  API's own input serializer and answered 201 with a constant, writing nothing: DRF's request
  handling, the token check and the body's validation that an order create starts with.

benchmarks/web.py runs its server with `DJANGO_SETTINGS_MODULE=benchmarks.web_settings`: the
product's settings with this module as the URLconf.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from microfactory.urls import handler404
from microfactory.urls import urlpatterns as product_urls
from orders.api.views import OrderInputSerializer


@login_required
def signed_in_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"signed in\n", content_type="text/plain")


class OrderInput(APIView):
    def post(self, request: Request) -> Response:
        OrderInputSerializer(data=request.data).is_valid(raise_exception=True)
        return Response({"checked": True}, status=201)


urlpatterns: list[Any] = [
    path("floor/page", signed_in_page),
    path("api/v1/floor/order-input/", OrderInput.as_view()),
    *product_urls,
]
__all__ = ["handler404", "urlpatterns"]

"""Pages for maintenance teams: the catalog and their organisation's orders."""

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from catalog.models import PartFamily
from orders.models import Membership, Order, OrderLine
from production.models import Job


def _orders(user: object):
    lines = OrderLine.objects.select_related("revision__family", "material").prefetch_related(
        Prefetch("jobs", Job.objects.select_related("machine").prefetch_related("events", "job_artifacts"))
    )
    return Order.objects.for_user(user).select_related("placed_by").prefetch_related(
        Prefetch("lines", lines)
    )


def home(request: HttpRequest) -> HttpResponse:
    context: dict = {"families": PartFamily.objects.filter(retired=False)}
    if request.user.is_authenticated:
        membership = Membership.objects.filter(user=request.user).select_related("organisation").first()
        context["organisation"] = membership.organisation if membership else None
        context["orders"] = _orders(request.user)[:50]
    return render(request, "orders/home.html", context)


@login_required
def order_page(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(_orders(request.user), pk=order_id)
    return render(request, "orders/order.html", {"order": order})

"""Delivery sites on orders: the organisation's default when an order names none, a site that
does not exist refused, the lead time quoted including the transit there, and where a job is
made (and why) on the order page and in the API."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order, Organisation
from orders.services import OrderInvalid, OrderRequest, order_place
from production import machines
from production.models import Job, Machine, TransitTime
from tests.builders import make_machine, make_part, make_ready_job, make_site
from tests.orders.test_order_api import GOOD_LINE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

HOUR = 3600


@pytest.fixture
def network(organisation):
    """Hamburg and Munich a day apart, one MK4 at Munich; the customer delivers to Hamburg
    by default."""
    make_part("block")
    hamburg, munich = make_site("hamburg"), make_site("munich")
    TransitTime.objects.create(from_site=munich, to_site=hamburg, hours=24)
    make_machine("mk4-muc", site=munich)
    Organisation.objects.filter(pk=organisation.pk).update(default_delivery_site=hamburg)
    return {"hamburg": hamburg, "munich": munich}


def place(user, **fields) -> Order:
    from orders.services import LineRequest

    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="block",
                    parameters={"width": 20, "height": 10, "hole_d": 5},
                    material="pla",
                    quantity=1,
                )
            ],
            **fields,
        ),
    )
    return order


def test_an_order_naming_no_site_goes_to_its_organisations_default(user, network):
    assert place(user).delivery_site == network["hamburg"]
    assert place(user, delivery_site="munich").delivery_site == network["munich"]


def test_an_unknown_delivery_site_is_refused_with_the_sites_to_choose_from(user, network):
    with pytest.raises(OrderInvalid) as refused:
        place(user, delivery_site="atlantis")
    assert refused.value.errors == {"delivery_site": ["no site 'atlantis'; choose hamburg, munich"]}
    assert not Order.objects.exists()


def test_the_quoted_lead_time_includes_the_transit_to_the_delivery_site(user, network):
    to_munich = place(user, delivery_site="munich").lines.get()
    to_hamburg = place(user).lines.get()
    assert to_hamburg.lead_time_s - to_munich.lead_time_s == 24 * HOUR
    assert to_hamburg.quote["machine"] == "MK4-MUC"


def test_a_site_with_no_route_offers_no_lead_time(user, network):
    berlin = make_site("berlin")
    line = place(user, delivery_site=berlin.slug).lines.get()
    assert line.lead_time_s is None  # Munich's machine cannot deliver to Berlin


def test_the_order_page_and_api_say_where_it_is_made_and_why(user, api, network):
    Machine.objects.filter(slug="mk4-muc").update(queue_limit=10)
    make_machine("mk4-hh", site=network["hamburg"])
    busy = make_ready_job(user=user, estimated_time_s=30 * HOUR)
    Job.objects.filter(pk=busy.pk).update(
        status=Job.Status.ROUTED, machine=Machine.objects.get(slug="mk4-hh")
    )
    job = make_ready_job(user=user)  # delivered to Hamburg, the default
    order = job.line.order
    Order.objects.filter(pk=order.pk).update(due_date=timezone.localdate() + timedelta(days=3))
    assert machines.jobs_route_waiting(now=timezone.now(), actor="test")[job.pk] == "mk4-muc"

    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/orders/{order.pk}/").content.decode()
    assert "deliver to Hamburg" in page
    assert (
        "Made at <strong>Munich</strong>, delivered to <strong>Hamburg</strong> · "
        '<span class="route-reason">Munich: 6 h earlier than Hamburg incl. 1 day transit</span>'
    ) in page

    body = api.get(f"/api/v1/orders/{order.pk}/").json()
    assert body["delivery_site"] == "hamburg"
    (api_job,) = body["lines"][0]["jobs"]
    assert api_job["site"] == "Munich"
    assert api_job["route_reason"] == "Munich: 6 h earlier than Hamburg incl. 1 day transit"


def test_the_api_places_an_order_for_the_default_site_or_the_one_named(api, network):
    default = api.post("/api/v1/orders/", {"lines": [GOOD_LINE]}, format="json")
    assert default.status_code == 201 and default.json()["delivery_site"] == "hamburg"
    named = api.post(
        "/api/v1/orders/", {"lines": [GOOD_LINE], "delivery_site": "munich"}, format="json"
    )
    assert named.status_code == 201 and named.json()["delivery_site"] == "munich"
    bad = api.post(
        "/api/v1/orders/", {"lines": [GOOD_LINE], "delivery_site": "atlantis"}, format="json"
    )
    assert bad.status_code == 400 and "delivery_site" in str(bad.json())


def test_the_openapi_schema_describes_delivery_site_and_the_jobs_site(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    assert (
        "default delivery site"
        in components["OrderInput"]["properties"]["delivery_site"]["description"]
    )
    job = components["JobOutput"]["properties"]
    assert {"site", "route_reason"} <= set(job)


def test_the_cart_preselects_the_organisations_default_delivery_site(user, network):
    browser = Client()
    browser.force_login(user)
    form = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "1"}
    assert browser.post("/parts/block/add/", form).status_code == 302
    page = browser.get("/cart/").content.decode()
    assert '<option value="hamburg" selected>' in page
    assert '<option value="munich">' in page

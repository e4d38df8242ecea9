"""Assets (orders.assets): a team's equipment and its spare-parts list; ordering for an asset
with its saved configurations and the team's work-order reference; the EUR at stake while a
critical asset is down, shown to approvers, used by the real router, and the team's policy
that waives approval for it."""

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from orders.assets import AssetFields, asset_create, asset_part_add, asset_set_down
from orders.models import Asset, AssetPart, Order, OrderEvent, Status
from orders.services import LineRequest, OrderRequest, order_place
from production import machines
from production.models import Artifact, Job, JobArtifact, Machine
from tests.builders import (
    login_with_mfa,
    make_machine,
    make_order,
    make_organisation,
    make_part,
    make_user,
)
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

GOOD = {"width": 20, "height": 10, "hole_d": 5}


@pytest.fixture(autouse=True)
def _catalog():
    make_part("block")
    make_machine()


@pytest.fixture
def team(organisation):
    return make_team(organisation, threshold=None)


@pytest.fixture
def tech(user, team):
    return join_team(user, team)


def register(
    user, *, tag="L3-PACK", name="Line 3 packer", criticality="critical", cost="420"
) -> Asset:
    return asset_create(
        user=user,
        fields=AssetFields(
            tag=tag,
            name=name,
            location="Hall B",
            criticality=criticality,
            downtime_cost_per_hour=cost,
        ),
    )


def save_part(asset: Asset, user, *, parameters=None, quantity=2) -> AssetPart:
    part, _ = asset_part_add(
        asset=asset,
        user=user,
        line=LineRequest(
            part="block", parameters=parameters or GOOD, material="pla", quantity=quantity
        ),
        label="drive-side collar",
    )
    return part


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- registering, scoping -----------------------------------------------------------------------


def test_a_team_registers_its_assets_with_tags_unique_per_team(tech, organisation):
    browser = page(tech)
    form = {
        "tag": "L3-PACK",
        "name": "Line 3 packer",
        "location": "Hall B",
        "criticality": "critical",
        "downtime_cost_per_hour": "420",
    }
    created = browser.post("/assets/new/", form)
    asset = Asset.objects.get(tag="L3-PACK")
    assert created["Location"] == f"/assets/{asset.pk}/"
    assert (asset.team.slug, asset.downtime_cost_per_hour) == ("maintenance", Decimal("420"))
    again = browser.post("/assets/new/", form)
    assert (
        again.status_code == 400 and "already has an asset tagged L3-PACK" in again.content.decode()
    )
    bad = browser.post("/assets/new/", {**form, "tag": "X", "downtime_cost_per_hour": "lots"})
    assert bad.status_code == 400 and "enter an amount" in bad.content.decode()
    # Another team may use the same tag.
    other = join_team(
        make_user("other-tech", organisation=organisation),
        make_team(organisation, slug="utilities", threshold=None),
    )
    assert page(other).post("/assets/new/", form).status_code == 302
    assert Asset.objects.filter(tag="L3-PACK").count() == 2
    edited = browser.post(f"/assets/{asset.pk}/edit/", {**form, "downtime_cost_per_hour": "500"})
    assert edited.status_code == 302
    asset.refresh_from_db()
    assert asset.downtime_cost_per_hour == Decimal("500")
    listing = browser.get("/assets/").content.decode()
    assert "L3-PACK" in listing and "Line 3 packer" in listing


def test_another_organisations_assets_are_404_on_every_page_and_endpoint(tech):
    asset = register(tech)
    part = save_part(asset, tech)
    line = make_order(user=tech).lines.get()
    rival_org = make_organisation("rival")
    rival = join_team(
        make_user("rival-boss", organisation=rival_org, role="manager"),
        make_team(rival_org, threshold=None),
    )
    before = (
        list(Asset.objects.values_list("pk", "tag", "down_since", "downtime_cost_per_hour")),
        AssetPart.objects.count(),
        Order.objects.count(),
    )
    browser = page(rival)
    for method, url, data in [
        ("get", f"/assets/{asset.pk}/", {}),
        ("get", f"/assets/{asset.pk}/edit/", {}),
        ("post", f"/assets/{asset.pk}/edit/", {"tag": "MINE", "name": "mine"}),
        ("post", f"/assets/{asset.pk}/down/", {"down": "1"}),
        ("get", f"/assets/{asset.pk}/order/", {}),
        ("post", f"/assets/{asset.pk}/order/", {f"q_{part.pk}": "1"}),
        ("post", f"/assets/{asset.pk}/parts/{part.pk}/remove/", {}),
        ("post", "/parts/block/save-to-asset/", {"asset": asset.pk, "material": "pla"}),
        ("post", f"/order-lines/{line.pk}/save-to-asset/", {"asset": asset.pk}),
    ]:
        response = getattr(browser, method)(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
    assert "L3-PACK" not in browser.get("/assets/").content.decode()
    client = api(rival)
    assert client.get(f"/api/v1/assets/{asset.pk}/").status_code == 404
    assert client.get("/api/v1/assets/").json()["results"] == []
    assert client.get("/api/v1/assets/?tag=L3-PACK").json()["results"] == []
    # Ordering for someone else's asset is refused, nothing placed.
    refused = client.post(
        "/api/v1/orders/",
        {
            "lines": [{"part": "block", "parameters": GOOD, "material": "pla", "quantity": 1}],
            "asset": asset.pk,
        },
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"asset": [f"no asset {asset.pk} in your organisation"]}
    after = (
        list(Asset.objects.values_list("pk", "tag", "down_since", "downtime_cost_per_hour")),
        AssetPart.objects.count(),
        Order.objects.count(),
    )
    assert before == after


def test_the_asset_api_lists_reads_and_registers_the_organisations_assets(tech, organisation):
    asset = register(tech)
    save_part(asset, tech)
    client = api(tech)
    listed = client.get("/api/v1/assets/?tag=L3-PACK").json()["results"]
    assert [(a["id"], a["team"], a["is_down"]) for a in listed] == [
        (asset.pk, "maintenance", False)
    ]
    detail = client.get(f"/api/v1/assets/{asset.pk}/").json()
    assert detail["parts"] == [
        {
            "id": asset.parts.get().pk,
            "part": "block",
            "revision": 1,
            "parameters": GOOD,
            "material": "pla",
            "quantity": 2,
            "label": "drive-side collar",
        }
    ]
    made = client.post(
        "/api/v1/assets/",
        {
            "tag": "CONV-2",
            "name": "Conveyor 2",
            "criticality": "high",
            "downtime_cost_per_hour": "80.50",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert (made.json()["team"], made.json()["downtime_cost_per_hour"]) == ("maintenance", "80.50")
    dup = client.post("/api/v1/assets/", {"tag": "CONV-2", "name": "again"}, format="json")
    assert dup.status_code == 400 and "tag" in dup.json()["errors"]
    teamless = make_user("no-team", organisation=organisation)
    assert (
        api(teamless).post("/api/v1/assets/", {"tag": "X", "name": "x"}, format="json").status_code
        == 403
    )
    # Members of the organisation outside the team read it too (scoped like orders).
    assert api(teamless).get(f"/api/v1/assets/{asset.pk}/").status_code == 200


# --- the spare-parts list and ordering for an asset ---------------------------------------------


def test_a_configured_part_and_an_order_line_are_saved_on_the_spare_parts_list(tech):
    asset = register(tech)
    browser = page(tech)
    part_page = browser.get("/parts/block/").content.decode()
    assert 'id="save-to-asset"' in part_page and f'<option value="{asset.pk}">L3-PACK' in part_page
    form = {
        "p_width": "24",
        "p_height": "12",
        "p_hole_d": "6",
        "material": "pla",
        "quantity": "3",
        "asset": str(asset.pk),
    }
    saved = browser.post("/parts/block/save-to-asset/", form)
    assert saved.status_code == 302 and saved["Location"] == f"/assets/{asset.pk}/"
    part = asset.parts.get()
    assert (part.parameters, part.quantity, part.revision.number, part.material.slug) == (
        {"width": 24, "height": 12, "hole_d": 6},
        3,
        1,
        "pla",
    )
    browser.post("/parts/block/save-to-asset/", form)  # the same configuration again
    assert asset.parts.count() == 1
    bad = browser.post("/parts/block/save-to-asset/", {**form, "p_hole_d": "30"})
    assert bad["Location"] == "/parts/block/" and asset.parts.count() == 1
    order, _ = order_place(
        user=tech,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="block",
                    parameters={"width": 30, "height": 10, "hole_d": 5},
                    material="pla",
                    quantity=1,
                )
            ],
            asset=asset.pk,
        ),
    )
    line = order.lines.get()
    browser.post(f"/order-lines/{line.pk}/save-to-asset/", {"asset": asset.pk})
    assert sorted(p.parameters["width"] for p in asset.parts.all()) == [24, 30]
    order_page = browser.get(f"/orders/{line.order_id}/").content.decode()
    assert f'action="/order-lines/{line.pk}/save-to-asset/"' in order_page
    assert "Save on L3-PACK's spare parts" in order_page
    html = browser.get(f"/assets/{asset.pk}/").content.decode()
    assert html.count('class="spare-part"') == 2 and "Order for this asset" in html


def test_an_asset_picked_as_anything_but_its_id_is_not_found_and_nothing_is_saved(tech):
    asset = register(tech)
    line = make_order(user=tech).lines.first()
    browser = page(tech)
    form = {"p_width": "24", "p_height": "12", "p_hole_d": "6", "material": "pla"}
    for picked in ["", "abc", "-1", f" {asset.pk}", f"{asset.pk}.0", "9" * 30]:
        saved = browser.post("/parts/block/save-to-asset/", {**form, "asset": picked})
        assert saved.status_code == 404, picked
        saved = browser.post(f"/order-lines/{line.pk}/save-to-asset/", {"asset": picked})
        assert saved.status_code == 404, picked
    assert not asset.parts.exists()


def test_order_for_asset_prefills_the_lines_with_the_saved_configuration(tech):
    asset = register(tech)
    collar = save_part(asset, tech, parameters={"width": 24, "height": 12, "hole_d": 6}, quantity=2)
    spacer = save_part(asset, tech, parameters={"width": 30, "height": 8, "hole_d": 5}, quantity=4)
    browser = page(tech)
    form_page = browser.get(f"/assets/{asset.pk}/order/").content.decode()
    assert f'name="q_{collar.pk}" id="q_{collar.pk}" value="2"' in form_page
    assert f'name="q_{spacer.pk}" id="q_{spacer.pk}" value="4"' in form_page
    placed = browser.post(
        f"/assets/{asset.pk}/order/",
        {
            f"q_{collar.pk}": "2",
            f"q_{spacer.pk}": "0",
            "work_order_ref": "WO-2026-0142",
            "priority": "normal",
            "idempotency_key": "k1",
        },
    )
    order = Order.objects.get()
    assert placed["Location"] == f"/orders/{order.pk}/"
    assert (order.asset_id, order.work_order_ref) == (asset.pk, "WO-2026-0142")
    line = order.lines.get()  # the spacer's 0 left it out
    assert (line.revision_id, line.parameters, line.material_id, line.quantity) == (
        collar.revision_id,
        collar.parameters,
        collar.material_id,
        2,
    )
    assert line.parameters_hash == collar.parameters_hash
    # The same form sent again (a double click) places nothing more.
    browser.post(f"/assets/{asset.pk}/order/", {f"q_{collar.pk}": "2", "idempotency_key": "k1"})
    assert Order.objects.count() == 1
    nothing = browser.post(f"/assets/{asset.pk}/order/", {f"q_{collar.pk}": "0"})
    assert nothing.status_code == 400 and Order.objects.count() == 1
    too_long = browser.post(
        f"/assets/{asset.pk}/order/", {f"q_{collar.pk}": "1", "work_order_ref": "W" * 65}
    )
    assert too_long.status_code == 400 and "at most 64 characters" in too_long.content.decode()
    # The asset page shows every part made for it, with its status.
    history = browser.get(f"/assets/{asset.pk}/").content.decode()
    assert order.number in history and "WO-2026-0142" in history
    assert f'data-line="{line.pk}"' in history and line.get_status_display() in history


def test_an_asset_order_refuses_a_quantity_that_is_not_a_whole_number_beside_its_part(tech):
    """2.5 or -1 parts is refused where it was typed, not read as 0 and left out unseen."""
    asset = register(tech)
    collar = save_part(asset, tech, parameters={"width": 24, "height": 12, "hole_d": 6}, quantity=2)
    spacer = save_part(asset, tech, parameters={"width": 30, "height": 8, "hole_d": 5}, quantity=4)
    browser = page(tech)
    for bad in ["2.5", "-1", "two", "9" * 5000]:
        answer = browser.post(
            f"/assets/{asset.pk}/order/",
            {f"q_{collar.pk}": "2", f"q_{spacer.pk}": bad, "idempotency_key": f"k-{bad[:8]}"},
        )
        html = answer.content.decode()
        assert answer.status_code == 400, bad
        assert "correct the quantities marked below" in html
        assert "Enter a whole number of parts, from 1 to" in html
        assert f'name="q_{spacer.pk}" id="q_{spacer.pk}" value="{bad[:20]}"' in html
        assert f'name="q_{collar.pk}" id="q_{collar.pk}" value="2"' in html
    assert not Order.objects.exists()


def test_the_asset_order_form_offers_both_speeds_with_their_price_and_places_an_expedited_one(
    tech,
):
    asset = register(tech)
    collar = save_part(asset, tech, parameters={"width": 24, "height": 12, "hole_d": 6}, quantity=2)
    browser = page(tech)
    form_page = browser.get(f"/assets/{asset.pk}/order/").content.decode()
    assert 'id="speed-standard"' in form_page and 'id="speed-expedited"' in form_page
    assert "expedite fee" in form_page and "Needed by" in form_page
    browser.post(
        f"/assets/{asset.pk}/order/",
        {f"q_{collar.pk}": "2", "priority": "normal", "speed": "expedited", "idempotency_key": "k"},
    )
    order = Order.objects.get()
    assert (order.asset_id, order.expedite, order.priority) == (asset.pk, True, "urgent")
    assert order.expedite_fee > 0  # in the total, as on the cart


def test_the_work_order_reference_round_trips_through_the_orders_api(tech):
    asset = register(tech, criticality="medium")
    client = api(tech)
    body = {
        "lines": [{"part": "block", "parameters": GOOD, "material": "pla", "quantity": 1}],
        "asset": asset.pk,
        "work_order_ref": "SAP-PM 4711/0020",
    }
    placed = client.post("/api/v1/orders/", body, format="json")
    assert placed.status_code == 201, placed.json()
    answer = placed.json()
    assert (answer["asset"], answer["asset_tag"], answer["work_order_ref"]) == (
        asset.pk,
        "L3-PACK",
        "SAP-PM 4711/0020",
    )
    assert answer["downtime_stake"] is None  # running, and not critical
    read = client.get(f"/api/v1/orders/{answer['id']}/").json()
    assert (read["asset"], read["work_order_ref"]) == (asset.pk, "SAP-PM 4711/0020")
    summary = client.get("/api/v1/orders/").json()["results"][0]
    assert (summary["asset"], summary["work_order_ref"]) == (asset.pk, "SAP-PM 4711/0020")
    too_long = client.post("/api/v1/orders/", {**body, "work_order_ref": "W" * 65}, format="json")
    assert too_long.status_code == 400 and "work_order_ref" in too_long.json()["errors"]
    unknown = client.post("/api/v1/orders/", {**body, "asset": 999999}, format="json")
    assert unknown.status_code == 400 and "asset" in unknown.json()["errors"]
    assert Order.objects.count() == 1


def test_orders_are_found_by_work_order_and_asset_and_a_reorder_stays_on_the_asset(tech):
    asset = register(tech, criticality="medium")
    client = api(tech)
    body = {
        "lines": [{"part": "block", "parameters": GOOD, "material": "pla", "quantity": 1}],
        "asset": asset.pk,
        "work_order_ref": "SAP-PM 4711/0020",
    }
    placed = client.post("/api/v1/orders/", body, format="json").json()
    client.post("/api/v1/orders/", {"lines": body["lines"]}, format="json")  # another order
    for words in ("4711/0020", "L3-PACK", asset.name.split()[0]):
        found = client.get("/api/v1/orders/", {"q": words}).json()["results"]
        assert [o["id"] for o in found] == [placed["id"]], words
    again = client.post(f"/api/v1/orders/{placed['id']}/reorder/", {}, format="json")
    assert again.status_code == 201, again.json()
    reordered = Order.objects.get(pk=again.json()["id"])
    assert (reordered.asset_id, reordered.work_order_ref) == (asset.pk, "")


# --- downtime: stake, approval waiver, routing ---------------------------------------------------


def test_an_order_for_a_critical_asset_that_is_down_carries_the_eur_at_stake(tech, organisation):
    asset = register(tech)
    asset_set_down(asset=asset, user=tech, down=True, now=timezone.now(), reason="belt torn")
    order = place_for(tech, asset)
    lead_s = max(line.lead_time_s for line in order.lines.all())
    assert order.downtime_stake == (Decimal(420) * Decimal(lead_s) / 3600).quantize(Decimal("0.01"))
    assert order.downtime_stake > 0
    text = order.downtime_text
    assert text.startswith("Line 3 packer down, 420 EUR/h, ~") and text.endswith(" EUR at stake")
    # The approver sees why it is urgent, on the approvals page and the order page.
    strict = make_team(organisation, slug="strict", threshold="0.01")
    waiting = place_for(join_team(make_user("colleague", organisation=organisation), strict), asset)
    assert waiting.status == Status.AWAITING_APPROVAL
    approver = make_user("boss", organisation=organisation, role="approver")
    for url in ("/approvals/", f"/orders/{waiting.pk}/"):
        assert "Line 3 packer down, 420 EUR/h" in page(approver).get(url).content.decode(), url
    # Running again: nothing at stake any more (the stake placed stays on record).
    asset_set_down(asset=asset, user=tech, down=False, now=timezone.now())
    order.refresh_from_db()
    assert order.stake_now == 0 and order.downtime_stake > 0
    # A non-critical asset that is down carries no stake.
    minor = register(tech, tag="FAN-1", name="Fan", criticality="low")
    asset_set_down(asset=minor, user=tech, down=True, now=timezone.now())
    assert place_for(tech, minor).downtime_stake is None


def test_the_team_policy_waives_approval_for_a_critical_asset_that_is_down(organisation):
    team = make_team(organisation, threshold="0.01")
    team.waive_approval_when_asset_down = True
    team.save()
    tech = join_team(make_user("tech", organisation=organisation), team)
    asset = register(tech)
    running = place_for(tech, asset)
    assert running.status == Status.AWAITING_APPROVAL  # not down: the threshold holds
    asset_set_down(asset=asset, user=tech, down=True, now=timezone.now())
    waived = place_for(tech, asset)
    assert waived.status == Status.IN_PRODUCTION
    event = OrderEvent.objects.get(order=waived, line=None, to_status=Status.APPROVED)
    assert "approval waived by Maintenance's policy for a critical asset that is down" in (
        event.reason
    )
    assert "Line 3 packer down, 420 EUR/h" in event.reason and "above the threshold" in event.reason
    # Without the policy the threshold holds, down or not.
    team.waive_approval_when_asset_down = False
    team.save()
    assert place_for(tech, asset).status == Status.AWAITING_APPROVAL


def place_for(user, asset: Asset, *, priority: str = "normal") -> Order:
    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[LineRequest(part="block", parameters=GOOD, material="pla", quantity=1)],
            asset=asset.pk,
            priority=priority,
        ),
    )
    return order


def ready(order: Order) -> Job:
    """The order's job with its files made (as tests.builders.make_ready_job does), free to
    route."""
    job = order.lines.get().jobs.get()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.TRAVELER_READY,
        hold="",
        dfm_report={"extents_mm": [20, 20, 10]},
        toolpath_meta={"estimated_time_s": 600, "layers": 1},
    )
    gcode = b"G28\nM84\n"
    key = hashlib.sha256(gcode).hexdigest()
    artifact = Artifact.objects.filter(kind=Artifact.Kind.GCODE, input_key=key).first()
    if artifact is None:
        artifact = Artifact(kind=Artifact.Kind.GCODE, input_key=key, sha256=key, size=len(gcode))
        artifact.file.save("part.gcode", ContentFile(gcode), save=False)
        artifact.save()
    JobArtifact.objects.create(job=job, artifact=artifact, kind=Artifact.Kind.GCODE)
    return job


def first_routed(*orders: Order) -> int:
    """Route the orders' jobs onto a machine with room for one: the job that got it."""
    Machine.objects.update(queue_limit=1)
    jobs = [ready(order) for order in orders]
    routed = machines.jobs_route_waiting(now=timezone.now(), actor="router")
    assert len(routed) == 1
    (job_id,) = routed
    assert job_id in {job.pk for job in jobs}
    return job_id


def test_of_two_equal_jobs_the_one_whose_asset_is_down_goes_first(tech, settings):
    settings.MF_DOWNTIME_HIGH_EUR = settings.MF_DOWNTIME_URGENT_EUR = 10**9  # tie-break only
    running = register(tech, tag="A", name="Spare press")
    down = register(tech, tag="B", name="Packer")
    asset_set_down(asset=down, user=tech, down=True, now=timezone.now())
    plain = place_for(tech, running)  # placed first: the lower id wins a tie without a stake
    urgent = place_for(tech, down)
    assert (plain.priority, urgent.priority) == ("normal", "normal")
    assert first_routed(plain, urgent) == urgent.lines.get().jobs.get().pk


def test_of_two_down_assets_the_higher_stake_goes_first(tech, settings):
    settings.MF_DOWNTIME_HIGH_EUR = settings.MF_DOWNTIME_URGENT_EUR = 10**9
    cheap = register(tech, tag="A", name="Labeller", cost="50")
    dear = register(tech, tag="B", name="Packer", cost="420")
    for asset in (cheap, dear):
        asset_set_down(asset=asset, user=tech, down=True, now=timezone.now())
    low, high = place_for(tech, cheap), place_for(tech, dear)
    assert 0 < low.downtime_stake < high.downtime_stake
    assert first_routed(low, high) == high.lines.get().jobs.get().pk


@pytest.mark.parametrize("runs_again", [False, True])
def test_a_large_stake_raises_the_priority_while_the_asset_is_down(tech, settings, runs_again):
    settings.MF_DOWNTIME_HIGH_EUR, settings.MF_DOWNTIME_URGENT_EUR = 1.0, 2.0
    other = register(tech, tag="A", name="Spare press")
    down = register(tech, tag="B", name="Packer")
    asset_set_down(asset=down, user=tech, down=True, now=timezone.now())
    high = place_for(tech, other, priority="high")  # the requester said high, no asset down
    stake = place_for(tech, down)  # normal, but its stake earns "urgent"
    assert stake.downtime_priority == "urgent"
    if runs_again:  # repaired before its parts were routed: the stake no longer counts
        asset_set_down(asset=down, user=tech, down=False, now=timezone.now())
        assert Order.objects.get(pk=stake.pk).downtime_priority == ""
    winner = high if runs_again else stake
    assert first_routed(high, stake) == winner.lines.get().jobs.get().pk


def test_down_state_is_set_and_cleared_by_the_team_only(tech, organisation):
    asset = register(tech)
    outsider = make_user("outsider", organisation=organisation)  # same organisation, no team
    page(outsider).post(f"/assets/{asset.pk}/down/", {"down": "1"})
    asset.refresh_from_db()
    assert asset.down_since is None
    browser = page(tech)
    browser.post(f"/assets/{asset.pk}/down/", {"down": "1", "reason": "bearing seized"})
    asset.refresh_from_db()
    assert asset.is_down and asset.down_reason == "bearing seized"
    since = asset.down_since
    browser.post(f"/assets/{asset.pk}/down/", {"down": "1"})  # still down: since stays
    asset.refresh_from_db()
    assert asset.down_since == since
    assert "Down since" in browser.get(f"/assets/{asset.pk}/").content.decode()
    browser.post(f"/assets/{asset.pk}/down/", {"down": "0"})
    asset.refresh_from_db()
    assert asset.down_since is None and asset.down_reason == ""
    assert timezone.now() - since < timedelta(minutes=1)


def test_the_admin_lists_and_shows_assets_and_their_spare_parts(tech):
    asset = register(tech)
    part = save_part(asset, tech)
    admin_user = make_user("root", organisation=make_organisation("works"))
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    browser = Client()
    login_with_mfa(browser, admin_user)
    for url in (
        "/admin/orders/asset/",
        f"/admin/orders/asset/{asset.pk}/change/",
        "/admin/orders/assetpart/",
        f"/admin/orders/assetpart/{part.pk}/change/",
        f"/admin/orders/team/{asset.team_id}/change/",
    ):
        response = browser.get(url)
        assert response.status_code == 200, url
    assert "L3-PACK" in browser.get("/admin/orders/asset/?q=PACK").content.decode()


def test_the_part_page_offers_the_assets_the_visitor_may_change(tech, organisation):
    """The "save on an asset" list (orders.assets.assets_editable_by, one query): a member's
    own team's assets, every team's of the organisation for an approver, none of another
    organisation's or for a member of no team."""
    own = register(tech)
    other_team = make_team(organisation, slug="hall-c", threshold=None)
    colleague = join_team(make_user("colleague", organisation=organisation), other_team)
    theirs = register(colleague, tag="C1-LIFT")
    approver = make_user("boss", organisation=organisation, role="approver")
    loner = make_user("loner", organisation=organisation)
    elsewhere = make_organisation("elsewhere")
    stranger = join_team(make_user("stranger", organisation=elsewhere), make_team(elsewhere))
    register(stranger, tag="X9-FAR")

    def offered(user) -> set[str]:
        html = page(user).get("/parts/block/").content.decode()
        return {tag for tag in ("L3-PACK", "C1-LIFT", "X9-FAR") if f">{tag} " in html}

    assert offered(tech) == {own.tag}
    assert offered(colleague) == {theirs.tag}
    assert offered(approver) == {own.tag, theirs.tag}
    assert offered(loner) == set()

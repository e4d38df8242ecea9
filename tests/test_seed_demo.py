from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Material, PartFamily, PartRevision
from catalog.parts import DEMO_PARTS
from orders.models import Membership, Order, Organisation, Team
from production import tenancy
from production.models import Machine, Site, Spool, TransitTime

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_whole_library_once_with_instructions_and_qc_checks() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    families = PartFamily.objects.prefetch_related("revisions")
    assert sorted(f.slug for f in families) == sorted(p.slug.replace("_", "-") for p in DEMO_PARTS)
    for family in families:
        (revision,) = family.revisions.all()
        assert revision.is_published
        assert revision.work_instructions and revision.qc_checks
        assert family.category and family.tag_list
    assert PartFamily.objects.get(slug="spur-gear").current_revision().materials.count() == 2


def test_seed_demo_puts_the_requester_in_a_team_whose_large_orders_wait_for_approval() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    requester = Membership.objects.select_related("team").get(user__username="requester")
    assert requester.team.name == "Line maintenance"
    assert requester.team.approval_threshold == Decimal("250.00")
    approver = Membership.objects.get(user__username="approver")
    assert approver.can_approve and approver.organisation_id == requester.organisation_id
    assert Team.objects.count() == 2  # one per customer organisation


def test_seed_demo_makes_one_factory_with_two_sites_and_two_customers() -> None:
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)

    factory = Organisation.objects.get(slug="microfactory")
    sites = Site.objects.filter(operator=factory)
    assert sorted(site.name for site in sites) == ["Plant North (Hamburg)", "Plant South (Munich)"]
    assert not Site.objects.exclude(operator=factory).exists()
    assert all(site.machines.exists() for site in sites)
    for username in ("operator", "manager"):
        user = get_user_model().objects.get(username=username)
        assert set(tenancy.sites_for_operator(user)) == set(sites)
        assert set(tenancy.machines_for_operator(user)) == set(Machine.objects.all())
    # The customers: their members order, see only their own orders, and work on no floor.
    customers = {"demo": {"requester", "approver", "admin"}, "harbour": {"harbour"}}
    for slug, usernames in customers.items():
        organisation = Organisation.objects.get(slug=slug)
        assert not organisation.sites.exists()
        members = set(organisation.memberships.values_list("user__username", flat=True))
        assert members == usernames
    for username in ("requester", "approver", "harbour"):
        user = get_user_model().objects.get(username=username)
        assert not tenancy.is_operator(user)
        orders = Order.objects.for_user(user)
        assert {o.organisation.slug for o in orders} == {
            "demo" if username != "harbour" else "harbour"
        }
    placed = Order.objects.exclude(reference__startswith="HIST-")
    assert sorted(placed.values_list("reference", flat=True)) == ["DEMO-1", "HARBOUR-1"]
    # And the weeks of simulated history (microfactory.demo.history), all completed.
    history = Order.objects.filter(reference__startswith="HIST-")
    assert history.exists() and set(history.values_list("status", flat=True)) == {"completed"}


def test_seed_demo_puts_spools_at_both_sites_loaded_on_the_printers() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    assert Spool.objects.count() == 7  # received once, however often the seed runs
    printers = Machine.objects.filter(process="fdm")
    for machine in printers.select_related("spool__material", "site"):
        spool = machine.spool
        assert spool.site == machine.site and spool.remaining_g == spool.initial_g
        assert list(machine.materials_loaded.all()) == [spool.material]
    assert set(Spool.objects.values_list("site__slug", flat=True)) == {"north", "south"}
    assert Spool.objects.filter(loaded_on__isnull=True).count() == 2  # spares on the shelf


def test_seed_demo_makes_a_network_with_transit_and_a_default_delivery_site_per_customer() -> None:
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)

    (transit,) = TransitTime.objects.select_related("from_site", "to_site")
    assert {transit.from_site.slug, transit.to_site.slug} == {"north", "south"}
    assert transit.hours == 24
    defaults = dict(
        Organisation.objects.exclude(slug="microfactory").values_list(
            "slug", "default_delivery_site__slug"
        )
    )
    assert defaults == {"demo": "south", "harbour": "north"}
    # Each demo order goes to its customer's default site.
    for order in Order.objects.select_related("organisation", "delivery_site"):
        assert order.delivery_site.slug == defaults[order.organisation.slug]
    # An MK4 at each site: G-code sliced for one runs at the other, so the sites compete.
    assert set(Machine.objects.filter(model="Prusa MK4").values_list("site__slug", flat=True)) == {
        "north",
        "south",
    }


def test_seed_demo_gives_every_demo_user_an_address_also_in_an_older_demo_database() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    users = get_user_model().objects
    addresses = dict(users.values_list("username", "email"))
    assert addresses == {
        "admin": "admin@demo.example",
        "requester": "requester@demo.example",
        "approver": "approver@demo.example",
        "harbour": "harbour@harbour.example",
        "operator": "operator@microfactory.example",
        "manager": "manager@microfactory.example",
    }
    # A demo database seeded before users had addresses gets them; one changed is kept.
    users.filter(username="approver").update(email="")
    users.filter(username="requester").update(email="pat@plant.example")
    call_command("seed_demo", "--no-order", verbosity=0)
    assert users.get(username="approver").email == "approver@demo.example"
    assert users.get(username="requester").email == "pat@plant.example"


def test_seed_demo_registers_the_demo_teams_assets_with_their_spare_parts_once() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    from orders.models import Asset

    assets = {a.tag: a for a in Asset.objects.prefetch_related("parts__revision__family")}
    assert sorted(assets) == ["CONV-07", "L3-PACK-01"]
    packer = assets["L3-PACK-01"]
    assert (packer.team.slug, packer.criticality, packer.downtime_cost_per_hour) == (
        "line-maintenance",
        "critical",
        Decimal("420.00"),
    )
    assert sorted(p.revision.family.slug for p in packer.parts.all()) == [
        "gt2-pulley",
        "shaft-collar",
    ]
    assert sum(a.parts.count() for a in assets.values()) == 4
    assert not packer.is_down  # the demo's user marks it down


def test_seed_demo_adds_a_grbl_mill_a_laser_and_their_plate_and_sheet_stock() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    aluminium = Material.objects.get(slug="aluminium-6061")
    acrylic = Material.objects.get(slug="acrylic")
    assert (aluminium.process, aluminium.sheet_thicknesses_mm) == ("cnc_mill", [3, 6, 10])
    assert (acrylic.process, acrylic.sheet_thicknesses_mm) == ("laser", [3, 5])
    assert aluminium.density_g_cm3 == Decimal("2.700") and acrylic.price_per_kg > 0
    mill = Machine.objects.get(process="cnc_mill")
    assert (mill.flavour, mill.build_volume_mm) == ("grbl", (300, 200, 60))
    assert mill.tool_numbers and mill.spindle_max_rpm == 24000
    assert list(mill.materials_loaded.all()) == [aluminium]
    laser = Machine.objects.get(process="laser")
    assert (laser.flavour, laser.kerf_mm, laser.max_power_s) == ("grbl", 0.15, 1000)
    assert list(laser.materials_loaded.all()) == [acrylic]
    for machine in (mill, laser):
        machine.full_clean()  # the seed's values pass the admin's validation
    # The cover plate is printed, or milled or laser cut on the route an order line takes.
    cover = PartFamily.objects.get(slug="cover-plate").current_revision()
    assert (cover.process, cover.alternative_processes) == ("fdm", ["cnc_mill", "laser"])
    assert {aluminium, acrylic} <= set(cover.materials.all())
    # Two milled and two laser-cut parts, in the stock their machines have loaded.
    for process, material in (("cnc_mill", aluminium), ("laser", acrylic)):
        revisions = PartRevision.objects.filter(process=process)
        assert revisions.count() == 2
        assert all(list(r.materials.all()) == [material] for r in revisions)

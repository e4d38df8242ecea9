"""Load the demo factory: an organisation and its users, parts, materials, sites, machines.

Idempotent: everything is looked up by its slug or name first, so running it again changes
nothing (and the demo order, placed with a fixed idempotency key, is placed only once).
"""

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from catalog.models import Material, PartFamily
from catalog.parameters import defaults, parse_schema
from catalog.parts import DEMO_PARTS
from catalog.services import revision_create, revision_publish
from orders.models import Membership, Organisation, Team
from orders.services import LineRequest, OrderRequest, order_place
from production.models import Machine, Site

PASSWORD = "microfactory"
# The requester orders for this team: orders quoted above its threshold wait for the approver.
TEAM = ("line-maintenance", "Line maintenance", Decimal("250.00"))
USERS = [
    # (username, role, is_staff, is_superuser)
    ("admin", Membership.Role.CATALOG_ADMIN, True, True),
    ("requester", Membership.Role.REQUESTER, False, False),
    ("approver", Membership.Role.APPROVER, False, False),
    ("operator", Membership.Role.OPERATOR, False, False),
    ("manager", Membership.Role.MANAGER, False, False),
]
MATERIALS = [
    # slug, name, density g/cm³, price per kg, nozzle °C, bed °C
    ("pla", "PLA", "1.24", "25.00", 210, 60),
    ("petg", "PETG", "1.27", "28.00", 240, 80),
    ("abs", "ABS", "1.04", "27.00", 250, 100),
    ("pa12-cf", "PA12 carbon fibre", "1.15", "95.00", 275, 90),
]
SITES = [("north", "Plant North (Hamburg)"), ("south", "Plant South (Munich)")]
MACHINES = [
    # slug, name, site, model, (x, y, z), flavour, materials, rate €/h, state
    (
        "mk4-1",
        "MK4 #1",
        "north",
        "Prusa MK4",
        (250, 210, 220),
        "marlin",
        ["pla", "petg"],
        "6",
        "idle",
    ),
    (
        "mk4-2",
        "MK4 #2",
        "north",
        "Prusa MK4",
        (250, 210, 220),
        "marlin",
        ["pla", "petg"],
        "6",
        "idle",
    ),
    (
        "voron-1",
        "Voron 350",
        "south",
        "Voron 2.4 350",
        (350, 350, 330),
        "klipper",
        ["abs", "petg", "pa12-cf"],
        "9",
        "idle",
    ),
    (
        "mini-1",
        "Mini #1",
        "south",
        "Prusa MINI+",
        (180, 180, 180),
        "marlin",
        ["pla"],
        "4",
        "maintenance",
    ),
]


class Command(BaseCommand):
    help = "Create the demo organisation, users, catalog, sites and machines (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-order", action="store_true", help="do not place the demo order")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        organisation, _ = Organisation.objects.get_or_create(
            slug="demo", defaults={"name": "Demo Maintenance Co."}
        )
        team_slug, team_name, threshold = TEAM
        team, _ = Team.objects.get_or_create(
            organisation=organisation,
            slug=team_slug,
            defaults={"name": team_name, "approval_threshold": threshold},
        )
        users = {}
        for username, role, staff, superuser in USERS:
            user, created = get_user_model().objects.get_or_create(
                username=username, defaults={"is_staff": staff, "is_superuser": superuser}
            )
            if created:
                user.set_password(PASSWORD)
                user.save()
            Membership.objects.get_or_create(
                user=user,
                organisation=organisation,
                defaults={
                    "role": role,
                    "team": team if role == Membership.Role.REQUESTER else None,
                },
            )
            users[username] = user
        materials = {}
        for slug, name, density, price, nozzle, bed in MATERIALS:
            materials[slug], _ = Material.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "density_g_cm3": Decimal(density),
                    "price_per_kg": Decimal(price),
                    "nozzle_temp_c": nozzle,
                    "bed_temp_c": bed,
                },
            )
        for part in DEMO_PARTS:
            family, _ = PartFamily.objects.get_or_create(
                slug=part.slug.replace("_", "-"),
                defaults={
                    "name": part.name,
                    "category": part.category,
                    "tags": part.tags,
                    "description": part.description,
                },
            )
            if not family.revisions.exists():
                revision = revision_create(
                    family=family,
                    script=part.script,
                    parameter_schema=part.schema,
                    rules=part.rules,
                    process=part.process,
                    materials=[materials[m] for m in part.materials],
                    work_instructions=part.work_instructions,
                    qc_checks=part.qc_checks,
                    created_by=users["admin"],
                )
                revision_publish(revision=revision, published_by=users["admin"])
        sites = {
            slug: Site.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in SITES
        }
        for slug, name, site, model, (x, y, z), flavour, loaded, rate, state in MACHINES:
            machine, created = Machine.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "site": sites[site],
                    "model": model,
                    "build_x_mm": x,
                    "build_y_mm": y,
                    "build_z_mm": z,
                    "flavour": flavour,
                    "hourly_rate": Decimal(rate),
                    "state": state,
                },
            )
            if created:
                machine.materials_loaded.set([materials[m] for m in loaded])
        if not options["no_order"]:
            self._demo_order(users["requester"])
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data ready: users {', '.join(u for u, *_ in USERS)} "
                f"(password '{PASSWORD}'), {len(DEMO_PARTS)} parts, {len(MACHINES)} machines"
            )
        )

    def _demo_order(self, requester: AbstractBaseUser) -> None:
        lines = []
        for part in DEMO_PARTS[:2]:
            values = defaults(parse_schema(part.schema))
            lines.append(
                LineRequest(
                    part=part.slug.replace("_", "-"),
                    parameters=values,
                    material=part.materials[0],
                    quantity=2,
                )
            )
        order, created = order_place(
            user=requester,
            request=OrderRequest(
                lines=lines, reference="DEMO-1", idempotency_key="seed-demo-order-1"
            ),
        )
        if created:
            self.stdout.write(f"placed demo order {order.number}; watch it at /orders/{order.pk}/")

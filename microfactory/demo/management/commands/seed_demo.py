"""Load the demo network: one factory organisation operating two sites (Hamburg and Munich)
with their machines (printers; a GRBL mill in Munich, a GRBL laser in Hamburg), the transit
time between them and spools of filament (loaded on the printers), its operator and manager;
two customer organisations with their teams, users and default delivery sites (one at each
site); parts and materials (filament, aluminium plate, acrylic sheet); a demo order from each
customer.

Idempotent: everything is looked up by its slug or name first, so running it again changes
nothing (and the demo orders, placed with fixed idempotency keys, are placed only once).
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from catalog.models import Material, PartFamily, SearchSynonym
from catalog.parameters import defaults, parse_schema
from catalog.parts import DEMO_PARTS, DemoPart
from catalog.services import revision_create, revision_publish
from microfactory.demo.history import history_seed
from orders.assets import asset_part_add
from orders.models import Asset, Membership, Organisation, Team
from orders.services import LineRequest, OrderRequest, order_place
from production import spools
from production.models import Machine, Site, Spool, TransitTime

PASSWORD = "microfactory"
HISTORY_WEEKS = 4
# The factory: it operates both sites; its operator and manager work on every job there,
# whichever customer ordered it. Same slug as the factory migration 0012 of production makes
# for sites that had none, so an upgraded demo database keeps one factory.
FACTORY = ("microfactory", "Microfactory")
# Customers: (slug, name, their maintenance team (slug, name, approval threshold), the site
# their orders go to by default). A requester orders for the team: orders quoted above its
# threshold wait for an approver.
CUSTOMERS = [
    (
        "demo",
        "Demo Maintenance Co.",
        ("line-maintenance", "Line maintenance", Decimal("250.00")),
        "south",
    ),
    ("harbour", "Harbour Logistics", ("fleet-workshop", "Fleet workshop", None), "north"),
]
USERS = [
    # (username, organisation, role, is_staff, is_superuser)
    ("admin", "demo", Membership.Role.CATALOG_ADMIN, True, True),
    ("requester", "demo", Membership.Role.REQUESTER, False, False),
    ("approver", "demo", Membership.Role.APPROVER, False, False),
    ("harbour", "harbour", Membership.Role.REQUESTER, False, False),
    ("operator", "microfactory", Membership.Role.OPERATOR, False, False),
    ("manager", "microfactory", Membership.Role.MANAGER, False, False),
]
MATERIALS = [
    # slug, name, density g/cm³, price per kg, nozzle °C, bed °C
    ("pla", "PLA", "1.24", "25.00", 210, 60),
    ("petg", "PETG", "1.27", "28.00", 240, 80),
    ("abs", "ABS", "1.04", "27.00", 250, 100),
    ("pa12-cf", "PA12 carbon fibre", "1.15", "95.00", 275, 90),
]
# Plate and sheet stock for the mill and the laser: slug (the cutting data's and the laser
# table's key), name, process, density g/cm³, price per kg, thicknesses in stock (mm).
STOCK_MATERIALS = [
    ("aluminium-6061", "Aluminium 6061-T6 plate", "cnc_mill", "2.70", "9.50", [3, 6, 10]),
    ("acrylic", "Cast acrylic sheet (PMMA)", "laser", "1.19", "7.00", [3, 5]),
]
SITES = [("north", "Plant North (Hamburg)"), ("south", "Plant South (Munich)")]
# Door to door between the sites, in hours (one row holds both ways).
TRANSIT_HOURS = [("north", "south", 24.0)]
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
    # The same model as Hamburg's: G-code sliced for an MK4 runs at either site, so the router
    # chooses between the two by arrival at the delivery site.
    (
        "mk4-3",
        "MK4 #3",
        "south",
        "Prusa MK4",
        (250, 210, 220),
        "marlin",
        ["pla", "petg"],
        "6",
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

# The mill and the laser (issue #16), beside the printers: both GRBL, both run by an operator
# (manual connector). The mill holds these T numbers of the shop's tool table
# (production.toolpath.cnc_tools.DEFAULT_TOOL_TABLE): end mills 6, 3, 2, 1 mm, drills 2.5-8 mm
# and a 90° countersink.
CNC_MACHINES: list[dict[str, Any]] = [
    {
        "slug": "mill-1",
        "name": "Mill #1",
        "site": "south",
        "model": "CNC 3020 mill (GRBL 1.1)",
        "process": "cnc_mill",
        "volume": (300, 200, 60),  # travel from the work offset's corner
        "flavour": "grbl",
        "materials": ["aluminium-6061"],
        "rate": "45",
        "power_w": 800,
        "tool_numbers": [1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 21],
        "spindle_max_rpm": 24000,
    },
    {
        "slug": "laser-1",
        "name": "Laser #1",
        "site": "north",
        "model": "CO2 laser 60 W (GRBL 1.1)",
        "process": "laser",
        "volume": (300, 200, 8),  # bed, and the thickest sheet it cuts
        "flavour": "grbl",
        "materials": ["acrylic"],
        "rate": "35",
        "power_w": 600,
        "kerf_mm": 0.15,
        "max_power_s": 1000,
        "laser_source": "co2",
    },
]

SPOOLS = [
    # site, material, colour, lot number, net grams, loaded on. Munich's ABS stock (750 g) is
    # below MF_SPOOL_LOW_STOCK_G and it has no PA12-CF, which its Voron runs: the station home
    # warns of both.
    ("north", "pla", "Galaxy Black", "PLA-2611-A", "1000", "mk4-1"),
    ("north", "petg", "Signal Orange", "PETG-2609-C", "1000", "mk4-2"),
    ("north", "pla", "Light Grey", "PLA-2611-B", "1000", None),
    ("south", "abs", "Black", "ABS-2610-F", "750", "voron-1"),
    ("south", "pla", "Galaxy Black", "PLA-2611-C", "1000", "mk4-3"),
    ("south", "pla", "White", "PLA-2611-A", "1000", "mini-1"),
    ("south", "petg", "Clear", "PETG-2609-D", "1000", None),
]

# The demo team's equipment (orders.assets): (tag, name, location, criticality, downtime
# EUR/h, its spare parts as (demo part slug, quantity, label)), each at its default parameters.
ASSETS = [
    (
        "L3-PACK-01",
        "Line 3 packer",
        "Hall B, line 3",
        Asset.Criticality.CRITICAL,
        "420.00",
        [("shaft_collar", 2, "drive shaft collars"), ("gt2_pulley", 1, "film feed pulley")],
    ),
    (
        "CONV-07",
        "Infeed conveyor 7",
        "Hall B, infeed",
        Asset.Criticality.HIGH,
        "120.00",
        [("spacer", 4, "roller spacers"), ("cable_clip", 10, "sensor cable clips")],
    ),
]


def demo_email(username: str, organisation: str) -> str:
    """The demo user's address (the reserved .example domain: nothing is ever delivered
    there); `make run` keeps sent mail for /dev/mail/ anyway."""
    return f"{username}@{organisation}.example"


# Catalog search synonyms (catalog.search): what a maintenance team types for what the
# catalog says. A catalog admin edits them in the admin.
SEARCH_SYNONYMS = [
    ("M6, 6 mm thread, 6 mm", "metric thread M6 is 6 mm across"),
    ("M5, 5 mm thread", "metric thread"),
    ("M4, 4 mm thread", "metric thread"),
    ("M8, 8 mm thread", "metric thread"),
    ("608, 608 bearing, 8 mm bore bearing", "skate bearing: 8 mm bore, 22 mm outside"),
    ("bush, bushing, sleeve", ""),
    ("knob, handle, grip", ""),
]


class Command(BaseCommand):
    help = "Create the demo factory, customers, users, catalog, sites and machines (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-order", action="store_true", help="do not place the demo orders")
        # Issue #15: weeks of history replayed through the simulator and the real router
        # (microfactory.demo.history), for the dashboards and the what-if page.
        parser.add_argument(
            "--history-weeks",
            type=int,
            default=HISTORY_WEEKS,
            help=f"weeks of simulated history to write once (default {HISTORY_WEEKS}; 0: none)",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        factory_slug, factory_name = FACTORY
        organisations = {
            factory_slug: Organisation.objects.get_or_create(
                slug=factory_slug, defaults={"name": factory_name}
            )[0]
        }
        teams = {}
        for slug, name, (team_slug, team_name, threshold), _ in CUSTOMERS:
            organisations[slug] = Organisation.objects.get_or_create(
                slug=slug, defaults={"name": name}
            )[0]
            teams[slug] = Team.objects.get_or_create(
                organisation=organisations[slug],
                slug=team_slug,
                defaults={"name": team_name, "approval_threshold": threshold},
            )[0]
        users = {}
        for username, organisation, role, staff, superuser in USERS:
            user, created = get_user_model().objects.get_or_create(
                username=username, defaults={"is_staff": staff, "is_superuser": superuser}
            )
            if created:
                user.set_password(PASSWORD)
                user.save()
            if not user.email:  # also a demo database seeded before users had addresses
                user.email = demo_email(username, organisation)
                user.save(update_fields=["email"])
            Membership.objects.get_or_create(
                user=user,
                organisation=organisations[organisation],
                defaults={
                    "role": role,
                    "team": teams[organisation] if role == Membership.Role.REQUESTER else None,
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
        for slug, name, process, density, price, thicknesses in STOCK_MATERIALS:
            materials[slug], _ = Material.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "process": process,
                    "density_g_cm3": Decimal(density),
                    "price_per_kg": Decimal(price),
                    "sheet_thicknesses_mm": thicknesses,
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
                    alternative_processes=part.alternative_processes,
                )
                revision_publish(revision=revision, published_by=users["admin"])
        for words, note in SEARCH_SYNONYMS:
            SearchSynonym.objects.get_or_create(words=words, defaults={"note": note})
        factory = organisations[factory_slug]
        sites = {}
        for slug, name in SITES:
            sites[slug], _ = Site.objects.get_or_create(
                slug=slug, defaults={"name": name, "operator": factory}
            )
            if sites[slug].operator_id is None:  # a site from before sites had operators
                Site.objects.filter(pk=sites[slug].pk).update(operator=factory)
        for origin, to, hours in TRANSIT_HOURS:
            TransitTime.objects.get_or_create(
                from_site=sites[origin], to_site=sites[to], defaults={"hours": hours}
            )
        for slug, *_, delivery in CUSTOMERS:
            Organisation.objects.filter(slug=slug, default_delivery_site__isnull=True).update(
                default_delivery_site=sites[delivery]
            )
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
        for spec in CNC_MACHINES:
            x, y, z = spec["volume"]
            machine, created = Machine.objects.get_or_create(
                slug=spec["slug"],
                defaults={
                    "name": spec["name"],
                    "site": sites[spec["site"]],
                    "model": spec["model"],
                    "process": spec["process"],
                    "build_x_mm": x,
                    "build_y_mm": y,
                    "build_z_mm": z,
                    "flavour": spec["flavour"],
                    "hourly_rate": Decimal(spec["rate"]),
                    "power_w": spec["power_w"],
                    "tool_numbers": spec.get("tool_numbers", []),
                    "spindle_max_rpm": spec.get("spindle_max_rpm"),
                    "kerf_mm": spec.get("kerf_mm"),
                    "max_power_s": spec.get("max_power_s"),
                    "laser_source": spec.get("laser_source", ""),
                },
            )
            if created:
                machine.materials_loaded.set([materials[m] for m in spec["materials"]])
        for site, material, colour, lot, net, machine_slug in SPOOLS:
            spool = Spool.objects.filter(
                site=sites[site], material=materials[material], lot_number=lot
            ).first()
            if spool is not None:
                continue  # received on an earlier run; where it is now is the floor's business
            spool = spools.spool_receive(
                material=materials[material],
                site=sites[site],
                lot_number=lot,
                initial_g=Decimal(net),
                colour=colour,
            )
            on = Machine.objects.get(slug=machine_slug) if machine_slug else None
            if on is not None and not Spool.objects.filter(loaded_on=on).exists():
                spools.spool_load(
                    spool_id=spool.pk, machine_id=on.pk, actor="seed_demo", now=timezone.now()
                )
        self._demo_assets(teams["demo"], users["requester"])
        # Before the demo orders, whose jobs would otherwise sit in the history's queues.
        history_jobs = history_seed(weeks=options["history_weeks"], now=timezone.now())
        if history_jobs:
            self.stdout.write(f"wrote {history_jobs} jobs of simulated history")
        if not options["no_order"]:
            self._demo_order(users["requester"], DEMO_PARTS[:2], "DEMO-1", "seed-demo-order-1")
            self._demo_order(users["harbour"], DEMO_PARTS[:1], "HARBOUR-1", "seed-demo-harbour-1")
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data ready: factory {factory_name} with {len(SITES)} sites, customers "
                f"{', '.join(name for _, name, *_ in CUSTOMERS)}; users "
                f"{', '.join(u for u, *_ in USERS)} (password '{PASSWORD}'), "
                f"{len(DEMO_PARTS)} parts, {len(MACHINES) + len(CNC_MACHINES)} machines, "
                f"{len(SPOOLS)} spools"
            )
        )

    def _demo_assets(self, team: Team, requester: AbstractBaseUser) -> None:
        """The demo team's assets with their spare parts (the same configuration saved twice
        is kept once: asset_part_add)."""
        by_slug = {part.slug: part for part in DEMO_PARTS}
        for tag, name, location, criticality, cost, parts in ASSETS:
            asset, _ = Asset.objects.get_or_create(
                team=team,
                tag=tag,
                defaults={
                    "name": name,
                    "location": location,
                    "criticality": criticality,
                    "downtime_cost_per_hour": Decimal(cost),
                },
            )
            for slug, quantity, label in parts:
                part = by_slug[slug]
                asset_part_add(
                    asset=asset,
                    user=requester,
                    line=LineRequest(
                        part=slug.replace("_", "-"),
                        parameters=defaults(parse_schema(part.schema)),
                        material=part.materials[0],
                        quantity=quantity,
                    ),
                    label=label,
                )

    def _demo_order(
        self, requester: AbstractBaseUser, parts: Sequence[DemoPart], reference: str, key: str
    ) -> None:
        lines = []
        for part in parts:
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
            request=OrderRequest(lines=lines, reference=reference, idempotency_key=key),
        )
        if created:
            self.stdout.write(f"placed demo order {order.number}; watch it at /orders/{order.pk}/")

"""Typed builders with explicit defaults: a reader sees every row a test creates."""

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from catalog.models import Material, PartFamily, PartRevision
from catalog.services import revision_create, revision_publish
from orders.models import Membership, Order, OrderLine, Organisation
from orders.services import LineRequest, OrderRequest, order_place
from production.models import Artifact, Job, JobArtifact, Machine, Site

BLOCK_SCRIPT = """\
import cadquery as cq

width = 20.0
height = 10.0
hole_d = 5.0

result = cq.Workplane("XY").box(width, width, height).faces(">Z").workplane().hole(hole_d)
show_object(result)
"""
BLOCK_SCHEMA: list[dict[str, Any]] = [
    {"name": "width", "label": "Width", "type": "length", "default": 20, "min": 5, "max": 400},
    {"name": "height", "label": "Height", "type": "length", "default": 10, "min": 2, "max": 400},
    {
        "name": "hole_d",
        "label": "Hole diameter",
        "type": "length",
        "default": 5,
        "min": 1,
        "max": 50,
    },
]
BLOCK_RULES = [{"rule": "hole_d <= width - 2", "message": "the hole must leave 1 mm of wall"}]


def make_organisation(slug: str = "acme") -> Organisation:
    return Organisation.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


def make_user(
    username: str = "req", *, organisation: Organisation | None = None, role: str = "requester"
) -> User:
    user = get_user_model().objects.create_user(username=username, password="pw-for-tests")
    Membership.objects.create(
        user=user, organisation=organisation or make_organisation(), role=role
    )
    return user


def make_material(slug: str = "pla") -> Material:
    return Material.objects.get_or_create(
        slug=slug,
        defaults={
            "name": slug.upper(),
            "density_g_cm3": Decimal("1.24"),
            "price_per_kg": Decimal("25"),
        },
    )[0]


def make_part(
    slug: str = "block",
    *,
    script: str = BLOCK_SCRIPT,
    schema: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] | None = None,
    materials: list[Material] | None = None,
    publish: bool = True,
) -> PartRevision:
    family = PartFamily.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]
    revision = revision_create(
        family=family,
        script=script,
        parameter_schema=BLOCK_SCHEMA if schema is None else schema,
        rules=BLOCK_RULES if rules is None else rules,
        process="fdm",
        materials=materials or [make_material()],
    )
    return revision_publish(revision=revision) if publish else revision


def make_site(slug: str = "north", *, operator: Organisation | None = None) -> Site:
    """A site operated by `operator`; by default by the default organisation (acme), an
    in-house factory: the tests' operators, members of acme, work there. Cross-factory tests
    name their own factories (tests/production/test_tenancy.py)."""
    return Site.objects.get_or_create(
        slug=slug,
        defaults={"name": slug.title(), "operator": operator or make_organisation()},
    )[0]


def make_machine(
    slug: str = "mk4-1",
    *,
    volume: tuple[float, float, float] = (250, 210, 220),
    materials: list[Material] | None = None,
    state: str = "idle",
    model: str = "Prusa MK4",
    site: Site | None = None,
) -> Machine:
    site = site or make_site()
    machine = Machine.objects.create(
        slug=slug,
        name=slug.upper(),
        site=site,
        model=model,
        build_x_mm=volume[0],
        build_y_mm=volume[1],
        build_z_mm=volume[2],
        state=state,
    )
    machine.materials_loaded.set(materials or [make_material()])
    return machine


def make_order(
    *,
    user: User,
    part: str = "block",
    lines: int = 1,
    quantity: int = 1,
    parameters: dict[str, Any] | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Order:
    order, _ = order_place(
        user=user,
        now=now,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part=part,
                    parameters=parameters or {"width": 20, "height": 10, "hole_d": 5},
                    material="pla",
                    quantity=quantity,
                )
                for _ in range(lines)
            ],
            idempotency_key=key,
        ),
    )
    return order


def make_ready_job(
    *,
    user: User,
    material: Material | None = None,
    extents: tuple[float, float, float] = (20, 20, 10),
    estimated_time_s: float = 600,
    due_date: date | None = None,
    priority: str = "normal",
    gcode: bytes = b"G28\nG1 Z5 F600\nM84\n",
) -> Job:
    """A job whose files are made (toolpath_ready, G-code attached: the router's) without
    running the pipeline: for routing, dispatch and machine tests. No traveler yet: the worker
    renders it beside routing, and the station renders one when it prints."""
    if not PartFamily.objects.filter(slug="block").exists():
        make_part("block")
    order = make_order(user=user)
    Order.objects.filter(pk=order.pk).update(due_date=due_date, priority=priority)
    line = order.lines.get()
    if material is not None:
        OrderLine.objects.filter(pk=line.pk).update(material=material)
    job = line.jobs.get()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.TOOLPATH_READY,
        hold="",  # its price settled: free to route (an estimated quote holds it until then)
        dfm_report={"extents_mm": list(extents)},
        toolpath_meta={"estimated_time_s": estimated_time_s, "layers": 1},
    )
    key = hashlib.sha256(gcode).hexdigest()
    artifact = Artifact.objects.filter(kind=Artifact.Kind.GCODE, input_key=key).first()
    if artifact is None:
        artifact = Artifact(kind=Artifact.Kind.GCODE, input_key=key, sha256=key, size=len(gcode))
        artifact.file.save("part.gcode", ContentFile(gcode), save=False)
        artifact.save()
    JobArtifact.objects.create(job=job, artifact=artifact, kind=Artifact.Kind.GCODE)
    return Job.objects.get(pk=job.pk)


def make_totp_device(user: User) -> TOTPDevice:
    """The user's confirmed authenticator app (a TOTP device with a random key)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test app", confirmed=True)


def totp_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the user's app shows now, computed from the device's key (RFC 6238).

    `steps_ahead=1` is the next 30 s window's code, which the device still accepts (tolerance
    1): a second login within one window cannot reuse the first code."""
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + steps_ahead)
    return f"{code:0{device.digits}d}"


def login_with_mfa(client: Client, user: User) -> TOTPDevice:
    """force_login, with the session past the second factor as after entering a code
    (django_otp.login's record in the session): what staff and catalog admins need."""
    device = make_totp_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device

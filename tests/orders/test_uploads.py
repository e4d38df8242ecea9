"""Customers' own models (orders.uploads): an uploaded STEP or STL goes through the sandboxed
build, the DFM report and the instant quote like a catalog part, is ordered and made through
the real pipeline, stays its organisation's own, and a catalog admin can promote it into the
catalog. Bad files get a reason, never a 500."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import PartFamily, PartPreview
from catalog.previews import preview_build
from microfactory.errors import DomainError
from orders.models import CustomerUpload, SavedQuote
from orders.services import LineRequest, OrderInvalid, OrderRequest, order_place
from orders.uploads import (
    UploadRefused,
    upload_create,
    upload_orderable,
    upload_promote,
    upload_quote,
    upload_state,
)
from production import machines, runner, services
from production.dfm_previews import preview_dfm_check
from production.models import Job, PreviewDfm
from tests.builders import make_machine, make_material, make_organisation, make_user
from tests.production.test_toolpath_engines_runner import plated_and_routed

pytestmark = pytest.mark.django_db


def box_with_hole_step() -> bytes:
    """A 30 x 20 x 10 mm box with a 6 mm hole, exported to STEP by CadQuery."""
    import tempfile
    from pathlib import Path

    import cadquery as cq

    box = cq.Workplane("XY").box(30, 20, 10).faces(">Z").workplane().hole(6)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "box.step"
        cq.exporters.export(box, str(path))
        return path.read_bytes()


def box_stl(size: tuple[float, float, float] = (25, 15, 8)) -> bytes:
    mesh = trimesh.creation.box(extents=size)
    mesh.apply_translation(np.array(size) / 2)
    return bytes(mesh.export(file_type="stl"))


def open_stl() -> bytes:
    """A box with two of its sides missing: open far beyond what the repair closes."""
    mesh = trimesh.creation.box(extents=(40, 30, 20))
    normals = mesh.face_normals
    keep = ~((np.abs(normals[:, 0]) > 0.9) | (normals[:, 2] > 0.9))
    return bytes(trimesh.Trimesh(mesh.vertices, mesh.faces[keep]).export(file_type="stl"))


def upload_file(content: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def built(upload: CustomerUpload) -> CustomerUpload:
    """Run the upload's build in the sandbox here, as the worker would."""
    preview = upload_state(upload).preview
    assert preview is not None
    preview_build(preview_id=preview.pk)
    return upload


def checked(upload: CustomerUpload, material: str = "pla") -> None:
    """Ask for the DFM report and run its check here, as the worker would."""
    upload_quote(upload=upload, material=material, quantity=1)
    for dfm in PreviewDfm.objects.filter(status=PreviewDfm.Status.QUEUED):
        preview_dfm_check(dfm_id=dfm.pk)


@pytest.fixture
def factory():
    make_material("pla")
    return make_machine()


@pytest.mark.cad
def test_an_uploaded_step_file_is_converted_in_the_sandbox_and_quoted_firm(user, factory):
    upload = upload_create(
        user=user, name="Guard bracket", upload=upload_file(box_with_hole_step(), "guard.STEP")
    )
    assert upload.format == "step" and upload.revision.family.private
    assert upload_state(upload).status == "checking"
    built(upload)
    state = upload_state(upload)
    assert state.status == "ready", state.reason
    assert sorted(state.preview.bbox_mm) == [10, 20, 30]
    # The box less the hole: 6000 - pi * 3² * 10 mm³.
    assert state.preview.volume_mm3 == pytest.approx(6000 - np.pi * 9 * 10, rel=1e-3)
    checked(upload)
    quoted = upload_quote(upload=upload, material="pla", quantity=3)
    assert quoted.facts.geometry_basis == "preview" and quoted.quote.firm
    assert quoted.quote.quantity == 3 and quoted.quote.total > 0
    assert quoted.report is not None and quoted.report.level in ("ok", "warn")
    assert "can be made on" in quoted.report.summary


@pytest.mark.cad
def test_an_uploaded_stl_is_ordered_and_made_into_gcode_by_the_real_pipeline(user, factory):
    upload = built(upload_create(user=user, name="Spacer", upload=upload_file(box_stl(), "s.stl")))
    assert upload.triangles == 12
    checked(upload)
    line = upload_orderable(upload, material="pla", quantity=2)
    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part=line["revision"].family.slug,
                    parameters={},
                    material="pla",
                    quantity=2,
                    revision=line["revision"].number,
                )
            ]
        ),
    )
    order_line = order.lines.get()
    assert order_line.revision == upload.revision
    assert order_line.quote["geometry_basis"] == "preview"  # firm: measured on the build
    job = order_line.jobs.get()
    for _ in range(10):
        if not runner.job_advance(job_id=job.pk, actor="test"):
            break
    services.jobs_release(line_ids=[order_line.pk])
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    job = plated_and_routed(job.pk)  # two copies: on a plate (#13)
    assert job.status == Job.Status.ROUTED, job.reason
    assert job.machine == factory
    assert job.plate_copies.count() == 2
    assert sorted(job.dfm_report["extents_mm"]) == [8, 15, 25]
    # The traveler is rendered beside routing (#19): the worker's render_traveler task.
    assert runner.job_traveler_render(job_id=job.pk, actor="test")
    kinds = set(job.job_artifacts.values_list("kind", flat=True))
    assert {"stl", "gcode", "traveler"} <= kinds and "step" not in kinds  # a mesh has no STEP
    gcode = job.job_artifacts.get(kind="gcode").artifact.file.read()
    assert b"G1" in gcode and job.toolpath_meta["layers"] >= 30


@pytest.mark.parametrize(
    "content, name, reason",
    [
        (b"", "empty.stl", "the file is empty"),
        (b"just some notes, not a model\n" * 10, "notes.stl", "neither a STEP nor an STL"),
        (box_stl()[:-300], "cut.stl", "truncated"),
        (b"ISO-10303-21;\nHEADER;\n", "cut.step", "truncated"),
        (b"solid x\n facet normal 0 0 1\n", "cut-ascii.stl", "truncated"),
    ],
)
def test_a_bad_file_is_refused_with_its_reason_and_nothing_is_kept(user, content, name, reason):
    make_material("pla")
    with pytest.raises(UploadRefused, match=reason):
        upload_create(user=user, name="Broken", upload=upload_file(content, name))
    assert not CustomerUpload.objects.exists() and not PartFamily.objects.exists()


def test_a_file_over_the_size_or_triangle_limit_is_refused(user, settings):
    make_material("pla")
    settings.ORDER_UPLOAD_MAX_MB = 1
    big = SimpleUploadedFile("big.stl", b"solid x\n" + b" " * (1024 * 1024 + 10) + b"endsolid x\n")
    with pytest.raises(UploadRefused, match="at most 1 MB is allowed"):
        upload_create(user=user, name="Big", upload=big)
    settings.ORDER_UPLOAD_MAX_TRIANGLES = 10
    with pytest.raises(UploadRefused, match="12 triangles; at most 10"):
        upload_create(user=user, name="Fine mesh", upload=upload_file(box_stl(), "m.stl"))


@pytest.mark.cad
def test_a_step_file_opencascade_cannot_read_is_rejected_with_the_reason(user, factory):
    garbage = b"ISO-10303-21;\nHEADER;\nnot really step\nENDSEC;\nEND-ISO-10303-21;\n"
    upload = built(upload_create(user=user, name="Odd", upload=upload_file(garbage, "odd.stp")))
    state = upload_state(upload)
    assert state.status == "rejected"
    assert "the STEP file could not be read" in state.reason, state.reason
    with pytest.raises(OrderInvalid) as refused:
        upload_orderable(upload, material="pla", quantity=1)
    assert "the file cannot be made: the STEP file could not be read" in str(refused.value.errors)
    # Asking again does not build the refused file again.
    assert upload_state(upload).preview.status == PartPreview.Status.FAILED


@pytest.mark.cad
def test_a_mesh_open_beyond_repair_cannot_be_ordered_and_says_why(user, factory):
    upload = built(upload_create(user=user, name="Shell", upload=upload_file(open_stl(), "o.stl")))
    checked(upload)
    report = upload_quote(upload=upload, material="pla", quantity=1).report
    assert report is not None and report.level == "fail"
    assert "cannot be made" in report.summary
    with pytest.raises(OrderInvalid) as refused:
        upload_orderable(upload, material="pla", quantity=1)
    assert "cannot be made" in str(refused.value.errors)


def test_another_organisation_can_neither_see_nor_order_an_upload(user):
    make_material("pla")
    upload = upload_create(user=user, name="Ours", upload=upload_file(box_stl(), "o.stl"))
    rival = make_user("rival-req", organisation=make_organisation("rival"))
    assert not CustomerUpload.objects.for_user(rival).exists()
    assert CustomerUpload.objects.for_user(user).get() == upload
    slug = upload.revision.family.slug
    with pytest.raises(OrderInvalid) as refused:
        order_place(
            user=rival,
            request=OrderRequest(
                lines=[LineRequest(part=slug, parameters={}, material="pla", quantity=1)]
            ),
        )
    assert f"no part '{slug}'" in str(refused.value.errors)
    page, api = Client(), APIClient()
    page.force_login(rival)
    api.force_authenticate(rival)
    assert page.get(f"/uploads/{upload.pk}/").status_code == 404
    assert page.get(f"/parts/{slug}/").status_code == 404
    assert slug not in page.get("/").content.decode()
    assert api.get(f"/api/v1/uploads/{upload.pk}/").status_code == 404
    assert api.post(f"/api/v1/uploads/{upload.pk}/quote/", {"material": "pla"}).status_code == 404
    assert api.post(f"/api/v1/uploads/{upload.pk}/scale/", {"unit": "inch"}).status_code == 404
    assert page.post(f"/uploads/{upload.pk}/scale/", {"unit": "inch"}).status_code == 404
    assert api.get(f"/api/v1/parts/{slug}/").status_code == 404
    assert slug not in str(api.get("/api/v1/parts/").json())
    assert api.get("/api/v1/uploads/").json()["results"] == []


@pytest.mark.cad
def test_a_catalog_admin_promotes_an_upload_into_the_catalog(user, factory):
    upload = built(
        upload_create(user=user, name="Chain guide", upload=upload_file(box_stl(), "c.stl"))
    )
    admin = make_user("cat-admin", role="catalog_admin")
    revision = upload_promote(upload=upload, user=admin, category="guides")
    assert revision.is_published and revision.kind == "static"
    assert not revision.family.private and revision.family.slug == "chain-guide"
    assert revision.family.category == "guides"
    assert revision.model_sha256 == upload.revision.model_sha256
    assert list(revision.materials.all()) == list(upload.revision.materials.all())
    upload.refresh_from_db()
    assert upload.promoted_to == revision and upload.promoted_by == admin
    with pytest.raises(DomainError, match="in the catalog already"):
        upload_promote(upload=upload, user=admin)
    # Listed in the catalog and orderable by anyone now, at the same firm price.
    rival = make_user("rival-req", organisation=make_organisation("rival"))
    page = Client()
    page.force_login(rival)
    assert "chain-guide" in page.get("/").content.decode()
    order, _ = order_place(
        user=rival,
        request=OrderRequest(
            lines=[LineRequest(part="chain-guide", parameters={}, material="pla", quantity=1)]
        ),
    )
    assert order.lines.get().quote["geometry_basis"] == "preview"


def test_an_upload_that_is_not_built_cannot_be_promoted_or_ordered(user):
    make_material("pla")
    upload = upload_create(user=user, name="Waiting", upload=upload_file(box_stl(), "w.stl"))
    with pytest.raises(DomainError, match="still being checked"):
        upload_promote(upload=upload, user=user)
    with pytest.raises(OrderInvalid) as refused:
        upload_orderable(upload, material="pla", quantity=1)
    assert "still being checked" in str(refused.value.errors)


def test_an_organisation_uploads_at_most_the_daily_limit(user, settings):
    make_material("pla")
    settings.ORDER_UPLOAD_MAX_PER_DAY = 1
    upload_create(user=user, name="One", upload=upload_file(box_stl(), "1.stl"))
    with pytest.raises(UploadRefused, match="the most allowed"):
        upload_create(user=user, name="Two", upload=upload_file(box_stl(), "2.stl"))
    api = APIClient()
    api.force_authenticate(user)
    answer = api.post(
        "/api/v1/uploads/", {"name": "Three", "model": upload_file(box_stl(), "3.stl")}
    )
    assert answer.status_code == 429 and "the most allowed" in answer.json()["message"]
    page = Client()
    page.force_login(user)
    html = page.post("/uploads/", {"name": "Four", "model": upload_file(box_stl(), "4.stl")})
    assert html.status_code == 400 and "the most allowed" in html.content.decode()


def test_an_account_without_an_organisation_is_told_so(db):
    from django.contrib.auth import get_user_model

    loner = get_user_model().objects.create_user("loner", password="pw")
    page = Client()
    page.force_login(loner)
    html = page.post("/uploads/", {"name": "Mine", "model": upload_file(box_stl(), "m.stl")})
    assert html.status_code == 400 and "does not belong to an organisation" in html.content.decode()


# --- pages and API ----------------------------------------------------------------------------


@pytest.mark.cad
def test_the_upload_page_shows_ready_by_as_the_part_page_does(user, factory, settings):
    """Once the file is checked, the quote says "Ready by": the live queue simulated with
    this line added (orders.delivery, as on the part page), QC allowance included."""
    settings.ORDER_QUOTE_RATES = replace(
        settings.ORDER_QUOTE_RATES, qc_job_s=3600.0, qc_copy_s=600.0
    )
    page = Client()
    page.force_login(user)
    page.post("/uploads/", {"name": "Spacer 25", "model": upload_file(box_stl(), "s.stl")})
    upload = CustomerUpload.objects.get()
    checking = page.get(f"/uploads/{upload.pk}/").content.decode()
    assert 'id="quote-ready-by"' not in checking  # no quote, so no promise, until checked
    built(upload)
    checked(upload)
    before = timezone.now()
    for html in (
        page.get(f"/uploads/{upload.pk}/").content.decode(),
        page.post(
            f"/uploads/{upload.pk}/configure/", {"material": "pla", "quantity": "3"}
        ).content.decode(),
    ):
        assert "<th>Ready by</th>" in html and "no promise" not in html
        cell = html.split('id="quote-ready-by">', 1)[1].split("</td>", 1)[0]
        shown = datetime.strptime(
            cell.split("<strong>", 1)[1].split("</strong>", 1)[0], "%Y-%m-%d %H:%M"
        ).replace(tzinfo=UTC)
        # At least the pipeline's overhead and the hour QC is allowed (the run comes between).
        allowance = timedelta(seconds=settings.ORDER_QUOTE_RATES.pipeline_overhead_s + 3600)
        assert shown >= (before + allowance).replace(second=0, microsecond=0)
        assert "confidence" in cell or "%" in cell


@pytest.mark.cad
def test_a_requester_uploads_checks_quotes_and_orders_a_model_on_the_pages(user, factory):
    page = Client()
    page.force_login(user)
    assert "Upload a model" in page.get("/").content.decode()
    refused = page.post("/uploads/", {"name": "Junk", "model": upload_file(b"hello", "a.stl")})
    assert refused.status_code == 400
    assert "neither a STEP nor an STL" in refused.content.decode()
    missing = page.post("/uploads/", {"name": "Nothing"})
    assert missing.status_code == 400 and "choose a STEP" in missing.content.decode()
    answer = page.post("/uploads/", {"name": "Spacer 25", "model": upload_file(box_stl(), "s.stl")})
    upload = CustomerUpload.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/uploads/{upload.pk}/"
    checking = page.get(f"/uploads/{upload.pk}/").content.decode()
    assert 'data-state="checking"' in checking and "Spacer 25" in checking
    early = page.post(f"/uploads/{upload.pk}/add/", {"material": "pla", "quantity": "1"})
    assert early.status_code == 302 and not page.session.get("cart")
    built(upload)
    checked(upload)
    ready = page.post(f"/uploads/{upload.pk}/configure/", {"material": "pla", "quantity": "4"})
    html = ready.content.decode()
    assert 'data-state="ready"' in html and "a firm price" in html and "Total for 4" in html
    assert 'id="dfm-summary"' in html and "can be made on" in html
    assert (
        page.post(f"/uploads/{upload.pk}/add/", {"material": "pla", "quantity": "4"}).status_code
        == 302
    )
    cart = page.get("/cart/").content.decode()
    assert f'href="/uploads/{upload.pk}/"' in cart and "Spacer 25" in cart
    placed = page.post("/cart/", {"idempotency_key": "k1", "priority": "normal"})
    assert placed.status_code == 302, placed.content.decode()[:2000]
    line = user.orders.get().lines.get()
    assert line.revision == upload.revision and line.quantity == 4
    assert page.get("/uploads/").content.decode().count(upload.number) == 1
    # Into the cart again, and kept as a saved quote at its price (the saved cart and quotes
    # find the organisation's private part as orders do).
    page.post(f"/uploads/{upload.pk}/add/", {"material": "pla", "quantity": "2"})
    saved = page.post("/cart/save-quote/", {"reference": "for purchasing"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    quote = SavedQuote.objects.get()
    assert [(q.revision, q.quantity) for q in quote.lines.all()] == [(upload.revision, 2)]


def test_the_upload_page_says_why_a_file_was_rejected(user):
    make_material("pla")
    garbage = b"ISO-10303-21;\nHEADER;\nnot really step\nENDSEC;\nEND-ISO-10303-21;\n"
    upload = upload_create(user=user, name="Odd", upload=upload_file(garbage, "odd.stp"))
    preview = upload_state(upload).preview
    PartPreview.objects.filter(pk=preview.pk).update(
        status=PartPreview.Status.FAILED, message="the STEP file could not be read: no shape"
    )
    page = Client()
    page.force_login(user)
    html = page.get(f"/uploads/{upload.pk}/").content.decode()
    assert 'data-state="rejected"' in html and "the STEP file could not be read" in html


@pytest.mark.cad
def test_the_api_uploads_quotes_and_orders_a_model(api, user, factory):
    bad = api.post("/api/v1/uploads/", {"name": "x", "model": upload_file(b"", "e.stl")})
    assert bad.status_code == 400 and "empty" in bad.json()["message"]
    nameless = api.post("/api/v1/uploads/", {"model": upload_file(box_stl(), "s.stl")})
    assert nameless.status_code == 400 and "name" in nameless.json()["errors"]
    made = api.post(
        "/api/v1/uploads/",
        {"name": "Bracket", "model": upload_file(box_with_hole_step(), "b.step")},
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["status"] == "checking" and body["format"] == "step" and body["bbox_mm"] is None
    waiting = api.post(f"/api/v1/uploads/{body['id']}/quote/", {"material": "pla"}, format="json")
    assert waiting.status_code == 409 and "still being checked" in waiting.json()["message"]
    built(CustomerUpload.objects.get(pk=body["id"]))
    detail = api.get(f"/api/v1/uploads/{body['id']}/").json()
    assert detail["status"] == "ready" and sorted(detail["bbox_mm"]) == [10, 20, 30]
    quoted = api.post(
        f"/api/v1/uploads/{body['id']}/quote/", {"material": "pla", "quantity": 2}, format="json"
    )
    assert quoted.status_code == 200 and quoted.json()["firm"] is True
    assert quoted.json()["quote"]["quantity"] == 2
    wrong = api.post(f"/api/v1/uploads/{body['id']}/quote/", {"material": "abs"}, format="json")
    assert wrong.status_code == 400 and "material" in wrong.json()["errors"]
    order = api.post(
        "/api/v1/orders/",
        {
            "lines": [
                {
                    "part": detail["part"],
                    "revision": detail["revision"],
                    "parameters": {},
                    "material": "pla",
                    "quantity": 2,
                }
            ]
        },
        format="json",
    )
    assert order.status_code == 201, order.json()
    assert [u["id"] for u in api.get("/api/v1/uploads/").json()["results"]] == [body["id"]]


@pytest.mark.cad
def test_the_admin_action_promotes_an_upload_and_refuses_a_second_time(user, factory):
    from django.contrib.auth import get_user_model

    from tests.builders import login_with_mfa

    upload = built(
        upload_create(user=user, name="Belt clip", upload=upload_file(box_stl(), "b.stl"))
    )
    admin = get_user_model().objects.create_superuser("catalog-admin", password="pw-for-tests")
    client = Client()
    login_with_mfa(client, admin)
    listing = client.get("/admin/orders/customerupload/")
    assert listing.status_code == 200 and "Belt clip" in listing.content.decode()
    action = {"action": "promote", "_selected_action": [upload.pk]}
    answer = client.post("/admin/orders/customerupload/", action, follow=True)
    assert "is in the catalog as &#x27;Belt clip&#x27;" in answer.content.decode()
    family = PartFamily.objects.get(slug="belt-clip")
    assert not family.private and family.current_revision().model_sha256 == (
        upload.revision.model_sha256
    )
    again = client.post("/admin/orders/customerupload/", action, follow=True)
    assert "in the catalog already" in again.content.decode()
    assert PartFamily.objects.filter(private=False).count() == 1
    # Staff without the catalog (or upload) permissions cannot reach the uploads at all.
    clerk = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    clerk_client = Client()
    login_with_mfa(clerk_client, clerk)
    assert clerk_client.get("/admin/orders/customerupload/").status_code == 403


@pytest.mark.cad
def test_an_stl_drawn_in_inches_is_offered_the_scale_and_checked_in_mm_once_accepted(user, factory):
    inches = box_stl((25 / 25.4, 15 / 25.4, 8 / 25.4))
    page = Client()
    page.force_login(user)
    page.post("/uploads/", {"name": "Imperial spacer", "model": upload_file(inches, "s.stl")})
    upload = built(CustomerUpload.objects.get())
    checked(upload)
    quoted = upload_quote(upload=upload, material="pla", quantity=1)
    assert quoted.report is not None and quoted.report.unit_guess is not None
    assert quoted.report.unit_guess["unit"] == "inch"
    assert quoted.report.unit_guess["extents_mm"] == pytest.approx([25, 15, 8], abs=0.02)
    html = page.post(
        f"/uploads/{upload.pk}/configure/", {"material": "pla", "quantity": "1"}
    ).content.decode()
    assert 'id="upload-units"' in html and "looks drawn in <strong>inches</strong>" in html
    assert "25.0 × 15.0 × 8.0 mm" in html
    original = upload.revision
    answer = page.post(f"/uploads/{upload.pk}/scale/", {"unit": "inch"})
    assert answer.status_code == 302
    upload.refresh_from_db()
    assert upload.scale == 25.4 and upload.unscaled_revision == original
    assert upload.revision != original and upload.revision.family.private
    with original.model_file.open("rb") as sent:
        assert sent.read() == inches  # the file as sent is kept
    checked(built(upload))
    state = upload_state(upload)
    assert state.status == "ready" and sorted(state.preview.bbox_mm) == pytest.approx([8, 15, 25])
    rescaled = upload_quote(upload=upload, material="pla", quantity=1)
    assert rescaled.report is not None and rescaled.report.unit_guess is None
    assert rescaled.report.level in ("ok", "warn") and rescaled.quote.firm
    assert rescaled.quote.mass_g > quoted.quote.mass_g * 1000
    # Back to the file as sent, and nothing new is made for it.
    page.post(f"/uploads/{upload.pk}/scale/", {"unit": "mm"})
    upload.refresh_from_db()
    assert upload.revision == original and upload.scale == 1 and upload.unscaled_revision is None


@pytest.mark.cad
def test_the_api_takes_a_unit_and_refuses_a_step_file_or_an_unknown_unit(api, user, factory):
    stl = upload_create(
        user=user, name="Inch plate", upload=upload_file(box_stl((1, 0.5, 0.25)), "p.stl")
    )
    step = upload_create(
        user=user, name="Step plate", upload=upload_file(box_with_hole_step(), "p.step")
    )
    unknown = api.post(f"/api/v1/uploads/{stl.pk}/scale/", {"unit": "furlong"}, format="json")
    assert unknown.status_code == 400 and "unit" in unknown.json()["errors"]
    refused = api.post(f"/api/v1/uploads/{step.pk}/scale/", {"unit": "inch"}, format="json")
    assert refused.status_code == 409 and "STEP file says its own unit" in refused.json()["message"]
    taken = api.post(f"/api/v1/uploads/{stl.pk}/scale/", {"unit": "inch"}, format="json")
    assert taken.status_code == 200, taken.content
    assert taken.json()["scale"] == 25.4 and taken.json()["status"] == "checking"
    assert taken.json()["revision"] == 1 and taken.json()["part"] != stl.revision.family.slug

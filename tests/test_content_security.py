"""Content security (issue 18): every page carries a strict Content-Security-Policy with no
inline script or style but the nonce'd ones, and every file users or catalog scripts
influenced is served sandboxed, not sniffed, and (a drawing) as an attachment unless an
<img> shows it."""

import re
from html.parser import HTMLParser

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from catalog.models import PartPreview
from production.models import Artifact
from tests.builders import login_with_mfa, make_machine, make_part
from tests.production.test_station import attach, make_station_job

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(autouse=True)
def _plain_static_files(settings, no_broker):
    """Pages render {% static %} without a collectstatic manifest; nothing is queued."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def job(user):
    job = make_station_job(user=user, machine=make_machine(), traveler_pdf=PDF)
    attach(job, Artifact.Kind.STEP, b"ISO-10303-21;\nEND-ISO-10303-21;\n", {})
    return job


@pytest.fixture
def preview():
    revision = make_part("block")
    preview = PartPreview(
        key="a" * 64,
        revision=revision,
        parameters={},
        parameters_hash="b" * 64,
        engine="test",
        status=PartPreview.Status.READY,
        queued_at=timezone.now(),
    )
    preview.svg.save("a.svg", ContentFile(b'<svg xmlns="http://www.w3.org/2000/svg"/>'), False)
    preview.glb.save("a.glb", ContentFile(b"glTF"), False)
    preview.stl.save("a.stl", ContentFile(b"solid a\nendsolid a\n"), False)
    preview.save()
    return preview


@pytest.fixture
def staff(user):
    """The requester, also a superuser: every page opens for them."""
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    login_with_mfa(client, user)  # staff: past the second factor
    return client


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        directive.split()[0]: directive.split()[1:]
        for directive in header.split(";")
        if directive.strip()
    }


# --- files ------------------------------------------------------------------------------------


def assert_sandboxed(response, *, attachment: bool) -> None:
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response.get("Content-Disposition", "")
    assert disposition.startswith("attachment") == attachment, disposition


@pytest.mark.parametrize("kind", ["step", "stl", "svg", "gcode", "traveler"])
def test_every_job_artifact_is_a_sandboxed_attachment(staff, job, kind) -> None:
    response = staff.get(f"/api/v1/jobs/{job.pk}/artifacts/{kind}/")

    assert_sandboxed(response, attachment=True)


@pytest.mark.parametrize("kind", ["svg", "glb", "stl"])
def test_every_preview_file_of_the_api_is_a_sandboxed_attachment(staff, preview, kind) -> None:
    response = staff.get(f"/api/v1/previews/{preview.key}/{kind}/")

    assert_sandboxed(response, attachment=True)
    assert response["Content-Type"] != "text/html"


@pytest.mark.parametrize("kind", ["svg", "glb", "stl"])
def test_the_pages_preview_files_are_inline_for_img_but_sandboxed(staff, preview, kind) -> None:
    response = staff.get(f"/previews/{preview.key}.{kind}")

    # Inline: the catalog cards show the drawing with <img src>, which never runs scripts.
    assert_sandboxed(response, attachment=False)


@pytest.mark.parametrize(
    "url",
    [
        "/station/jobs/{job}/traveler.pdf",
        "/station/jobs/{job}/label.pdf",
        "/station/machines/mk4-1/labels.pdf",
        "/station/machines/mk4-1/travelers.pdf",
    ],
)
def test_the_stations_pdfs_open_inline_to_print_but_sandboxed(staff, job, url) -> None:
    if url.endswith("travelers.pdf"):  # merged from the stored travelers: a real PDF
        from weasyprint import HTML

        Artifact.objects.filter(kind=Artifact.Kind.TRAVELER).get().file.save(
            "t.pdf", ContentFile(HTML(string="<p>traveler</p>").write_pdf())
        )
    response = staff.get(url.format(job=job.pk))

    assert_sandboxed(response, attachment=False)


# --- pages ------------------------------------------------------------------------------------


class _InlineCode(HTMLParser):
    """What in a page a strict policy would block: inline scripts and styles without the
    nonce, event-handler and style attributes, javascript: URLs."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__()
        self.nonce = nonce
        self.blocked: list[str] = []
        self.nonced = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.blocked.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").strip().startswith("javas"):
                self.blocked.append(f"<{tag} {name}={value}>")
        inline = tag == "style" or (tag == "script" and "src" not in attributes)
        if inline and attributes.get("type") != "application/json":  # json_script: data
            if self.nonce is None or attributes.get("nonce") != self.nonce:
                self.blocked.append(f"<{tag}> without the page's nonce")
            else:
                self.nonced += 1


PAGES = [
    "/",
    "/parts/block/",
    "/cart/",
    "/quotes/",
    "/orders/",
    "/orders/{order}/",
    "/orders/{order}/reorder/?revision=latest",
    "/approvals/",
    "/station/",
    "/station/machines/mk4-1/",
    "/station/jobs/{job}/",
    "/admin/",
    "/admin/catalog/partrevision/",
    "/admin/catalog/partrevision/{revision}/change/",
    "/admin/production/job/{job}/change/",
    "/admin/accounts/apitoken/",
    "/admin/accounts/apitoken/add/",
    "/admin/otp_totp/totpdevice/",
    "/account/tokens/",
    "/api/docs/",
    "/api/v1/",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_a_strict_policy_and_nothing_inline_it_would_block(staff, job, url) -> None:
    url = url.format(job=job.pk, order=job.line.order_id, revision=job.line.revision_id)
    response = staff.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200, url

    directives = policy(response)
    nonce = next(
        (token[len("'nonce-") : -1] for token in directives["script-src"] if "nonce" in token),
        None,
    )
    assert [t for t in directives["script-src"] if "nonce" not in t] == ["'self'"]
    assert [t for t in directives["style-src"] if "nonce" not in t] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    page = _InlineCode(nonce)
    page.feed(response.content.decode())
    assert page.blocked == [], url
    if url in ("/parts/block/", "/api/docs/", "/api/v1/"):  # import map, inline scripts, styles
        assert page.nonced >= 1 and nonce


def test_the_login_pages_have_the_policy_too(client) -> None:
    for url in ("/login/", "/admin/login/"):
        response = client.get(url)
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        page = _InlineCode(None)
        page.feed(response.content.decode())
        assert page.blocked == [], url


def test_each_response_gets_its_own_nonce(staff, job) -> None:
    first, second = (policy(staff.get("/parts/block/"))["script-src"] for _ in range(2))
    assert first != second
    assert re.fullmatch(r"'nonce-[A-Za-z0-9+/=]{24}'", first[1])

"""The catalog admin's failure map of a revision (issue #15 point 6) and narrowing a range
from it into a new revision. Pages of the admin site (its login, its look, its permissions:
viewing a revision to see the map, adding one to narrow), served here because the jobs they
read are production's (catalog imports no production module)."""

import math
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from catalog.models import PartRevision
from catalog.parameters import SchemaError, narrowed_schema, parse_schema
from catalog.services import revision_narrow
from microfactory.errors import DomainError
from production import failmap, failmap_svg


def _revision(request: HttpRequest, revision_id: int, permission: str) -> PartRevision:
    if not request.user.has_perm(f"catalog.{permission}_partrevision"):
        raise PermissionDenied
    return get_object_or_404(PartRevision.objects.select_related("family"), pk=revision_id)


def _context(request: HttpRequest, revision: PartRevision, title: str) -> dict[str, Any]:
    newer = (
        revision.family.revisions.filter(number__gt=revision.number)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return {
        **admin.site.each_context(request),
        "opts": PartRevision._meta,
        "revision": revision,
        "title": title,
        "newer": newer,
    }


@require_http_methods(["GET"])
def revision_failures(request: HttpRequest, revision_id: int) -> HttpResponse:
    """Where in the revision's envelope its parts passed and failed: per parameter, per pair."""
    revision = _revision(request, revision_id, "view")
    thresholds = failmap.Thresholds.from_settings()
    found = failmap.revision_failure_map(revision=revision, thresholds=thresholds)
    scatter, shown, pairs = None, 0, 0
    if found.pair is not None:
        x_axis, y_axis = found.pair
        points, pairs = failmap.scatter_points(
            revision, x_axis.name, y_axis.name, limit=settings.MF_FAILMAP_MAX_POINTS
        )
        shown = len(points)
        scatter = failmap_svg.scatter_svg(x_axis, y_axis, points, found.regions)
    context = _context(request, revision, f"Where {revision} fails")
    context.update(
        failure_map=found,
        axes=[
            {
                "axis": axis,
                "svg": failmap_svg.bins_svg(axis),
                "regions": [r for r in found.regions if r.name == axis.name],
            }
            for axis in found.axes
        ],
        scatter=scatter,
        points_shown=shown,
        points_total=pairs,
        can_narrow=request.user.has_perm("catalog.add_partrevision"),
    )
    return TemplateResponse(request, "production/revision_failures.html", context)


def _number(raw: str | None) -> float | None:
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@require_http_methods(["GET", "POST"])
def revision_narrow_page(request: HttpRequest, revision_id: int) -> HttpResponse:
    """GET: what narrowing a parameter's range would make, to confirm; POST: make it (a new
    revision, published at once when asked) and go to its admin page."""
    revision = _revision(request, revision_id, "add")
    data = request.POST if request.method == "POST" else request.GET
    name = (data.get("parameter") or "").strip()[:100]
    minimum, maximum = _number(data.get("min")), _number(data.get("max"))
    context = _context(request, revision, f"Narrow a range of {revision}")
    context.update(parameter=name, minimum=minimum, maximum=maximum)
    error = ""
    if minimum is None or maximum is None:
        error = "Give the new minimum and maximum as numbers."
    else:
        try:
            narrowed_schema(revision.parameter_schema or [], name, minimum, maximum)
        except SchemaError as problem:
            error = str(problem)
    if not error and request.method == "POST":
        assert minimum is not None and maximum is not None  # checked above
        try:
            created = revision_narrow(
                revision=revision,
                parameter=name,
                minimum=minimum,
                maximum=maximum,
                created_by=request.user,
                publish=data.get("publish") == "on",
                reason=(data.get("reason") or "").strip()[:500],
            )
        except DomainError as problem:
            error = str(problem)
        else:
            state = "published" if created.is_published else "a draft: publish it when ready"
            messages.success(request, f"{created} made from {revision}, {state}.")
            return redirect(reverse("admin:catalog_partrevision_change", args=[created.pk]))
    if error:
        context["error"] = error
        return TemplateResponse(request, "production/revision_narrow.html", context, status=400)
    assert minimum is not None and maximum is not None
    spec = next(s for s in parse_schema(revision.parameter_schema or []) if s.name == name)
    context.update(
        spec=spec,
        outside=failmap.tally_outside(revision, name, minimum, maximum),
    )
    return TemplateResponse(request, "production/revision_narrow.html", context)


# The admin site's login, second factor and staff check in front of both pages.
revision_failures_view = admin.site.admin_view(revision_failures)
revision_narrow_view = admin.site.admin_view(revision_narrow_page)

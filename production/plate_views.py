"""Station pages for plates (#13): open a plate by scanning its traveler, start and finish it,
record QC copy by copy, print its traveler and its jobs' bag labels.

The same rules as the job pages (production.views): operators of the factory only, lookups
through production.tenancy (another factory's plate is not found), POST then redirect, every
change through a service (production.plating) that refuses what does not apply.
"""

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from microfactory.accounts.signed_in import signed_in_user
from microfactory.downloads import file_response
from microfactory.errors import DomainError
from production import plating, station, tenancy
from production.models import Job, Plate, PlateCopy
from production.pipeline.traveler import render_labels
from production.views import (
    JOB_RELATED,
    _checks,
    _pdf,
    _scrap_reason,
    operator_required,
)


def _plate(request: HttpRequest, plate_id: int) -> Plate:
    copies = PlateCopy.objects.select_related("job__line__revision__family", "remake").order_by(
        "number"
    )
    return get_object_or_404(
        tenancy.plates_for_operator(request.user)
        .select_related("machine__site", "material", "gcode", "traveler", "labels")
        .prefetch_related(Prefetch("copies", copies)),
        pk=plate_id,
    )


def plate_actions(plate: Plate) -> set[str]:
    """What the plate page offers now; the services refuse anything else all the same."""
    if plate.status == Plate.Status.ROUTED:
        return {"start"}
    if plate.status == Plate.Status.RUNNING:
        return {"finish"}
    if plate.status == Plate.Status.FINISHED:
        return {"qc"}
    return set()


@require_GET
@operator_required
def station_plate(request: HttpRequest, plate_id: int) -> HttpResponse:
    plate = _plate(request, plate_id)
    copies = list(plate.copies.all())
    jobs: dict[int, Job] = {}
    for copy in copies:
        jobs.setdefault(copy.job_id, copy.job)
    return render(
        request,
        "production/station_plate.html",
        {
            "plate": plate,
            "copies": copies,
            "jobs": list(jobs.values()),
            "actions": plate_actions(plate),
            "scrap_reasons": station.SCRAP_REASONS,
        },
    )


@require_GET
@operator_required
def station_plate_traveler(request: HttpRequest, plate_id: int) -> HttpResponseBase:
    plate = _plate(request, plate_id)
    if plate.traveler is None:
        raise Http404(f"{plate.number} has no traveler yet")
    return file_response(
        plate.traveler.file.open("rb"),
        content_type="application/pdf",
        filename=f"traveler-{plate.number}.pdf",
        attachment=False,
    )


@require_GET
@operator_required
def station_plate_gcode(request: HttpRequest, plate_id: int) -> HttpResponseBase:
    plate = _plate(request, plate_id)
    if plate.gcode is None:
        raise Http404(f"{plate.number} has no G-code")
    return file_response(
        plate.gcode.file.open("rb"), content_type="text/x-gcode", filename=f"{plate.number}.gcode"
    )


@require_GET
@operator_required
def station_plate_labels(request: HttpRequest, plate_id: int) -> HttpResponse:
    """One bag label per job on the plate (62 mm label printer): the PDF stored when the
    plate was made; rendered now only for a plate without it (or its file lost or altered)."""
    plate = _plate(request, plate_id)
    pdf = station.stored_pdf(plate.labels) if plate.labels is not None else None
    if pdf is None:
        jobs = Job.objects.filter(plate_copies__plate=plate).distinct().select_related(*JOB_RELATED)
        pdf = render_labels([station.job_label(job) for job in jobs.order_by("pk")])
    return _pdf(pdf, f"labels-{plate.number}.pdf")


def _ids(request: HttpRequest, name: str) -> list[int]:
    ids = []
    for raw in request.POST.getlist(name):
        try:
            ids.append(int(raw))
        except ValueError:
            raise DomainError(f"“{raw[:20]}” is not a copy") from None
    return ids


@require_POST
@operator_required
def station_plate_action(request: HttpRequest, plate_id: int, action: str) -> HttpResponse:
    plate = _plate(request, plate_id)
    now, operator = timezone.now(), signed_in_user(request)
    try:
        if action == "start":
            plating.plate_start(plate_id=plate.pk, operator=operator, now=now)
            messages.success(request, f"{plate.number}: started.")
        elif action == "finish":
            plating.plate_finish(plate_id=plate.pk, operator=operator, now=now)
            messages.success(request, f"{plate.number}: finished; QC each copy.")
        elif action == "qc":
            passed, scrapped = _ids(request, "pass"), _ids(request, "scrap")
            jobs = {c.job_id: c.job for c in plate.copies.all() if c.pk in passed}
            outcome = plating.copies_qc(
                plate_id=plate.pk,
                passed=passed,
                scrapped=scrapped,
                reason=_scrap_reason(request) if scrapped else "",
                operator=operator,
                now=now,
                checks={pk: _checks(job) for pk, job in jobs.items()},
            )
            text = f"{plate.number}: {len(passed)} passed, {len(scrapped)} scrapped."
            for remake in outcome.remakes:
                text += f" {remake.number} remakes {remake.quantity}."
            messages.success(request, text)
        else:
            raise Http404(f"no plate action {action!r}")
    except DomainError as refusal:
        messages.error(request, str(refusal))
    return redirect("station-plate", plate_id=plate.pk)

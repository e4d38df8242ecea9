"""Shop-floor pages for operators at a tablet: pick a machine, scan a job, act on it.

Plain forms (POST, then redirect): a scanner types the code and Enter, which submits the
scan form. The traveler's QR code opens a job's station page. A spool's label scanned on a
machine's page loads the spool on that machine (production.spools).

Who gets in (production.tenancy): anonymous visitors are sent to log in; a logged-in user who
works on no factory floor (not staff, no operator or manager role in an organisation that
operates a site) gets 403 on every station URL, before anything is looked up; an operator or
manager sees and acts on the sites, machines and jobs of their factory only, and anything
else answers 404, as if it did not exist. Every lookup below goes through tenancy's querysets.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.models import Process
from microfactory.accounts.signed_in import signed_in_user
from microfactory.downloads import file_response, file_sandboxed
from microfactory.errors import DomainError
from production import costing, job_costs, passport, plating, spools, station, tenancy
from production.models import Artifact, Job, JobArtifact, Machine, Plate, PlateCopy, Spool
from production.pipeline.traveler import (
    Traveler,
    TravelerCheck,
    render_label,
    render_labels,
    render_spool_label,
    render_traveler,
)

Status = Job.Status
JOB_RELATED = station.JOB_RELATED


def operator_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not tenancy.is_operator(request.user):
            # Not found, as for another factory's jobs: the station tells a customer's member
            # nothing, not even that a job or machine by that number exists.
            raise Http404("the station is for the operators of a factory")
        setattr(request, "works_on_floor", True)  # noqa: B010 (the navigation's Floor link)
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@operator_required
def station_home(request: HttpRequest) -> HttpResponse:
    sites = list(
        tenancy.sites_for_operator(request.user).prefetch_related("machines__spool__material")
    )
    stock = spools.site_stock(sites)
    return render(
        request,
        "production/station.html",
        {
            # Per site, the materials whose stock there is low (MF_SPOOL_LOW_STOCK_G).
            "sites": [
                (site, [level for level in stock.get(site.pk, []) if level.is_low])
                for site in sites
            ],
        },
    )


def machine_queue(machine: Machine) -> dict[str, list[Job]]:
    stored = JobArtifact.objects.filter(job=OuterRef("pk"), kind=Artifact.Kind.TRAVELER)
    jobs = (
        Job.objects.filter(machine=machine)
        .select_related(*JOB_RELATED)
        .annotate(has_traveler=Exists(stored))
    )
    finished = jobs.filter(status__in=(Status.DONE, Status.SCRAPPED))
    return {
        "now": list(jobs.filter(status__in=Job.STARTED).order_by("started_at", "pk")),
        "next": list(jobs.filter(status__in=station.NOT_STARTED).order_by(*Job.QUEUE_ORDER)),
        "qc": list(jobs.filter(status=Status.AWAITING_QC).order_by("finished_at", "pk")),
        "done": list(finished.order_by("-status_changed_at")[:10]),
    }


@require_GET
@operator_required
def station_machine(request: HttpRequest, slug: str) -> HttpResponse:
    machine = get_object_or_404(
        tenancy.machines_for_operator(request.user).select_related("site", "spool__material"),
        slug=slug,
    )
    queue = machine_queue(machine)
    printable = queue["now"] + queue["next"]
    return render(
        request,
        "production/station_machine.html",
        {
            "machine": machine,
            "queue": queue,
            # Its plates to run or QC (#13): their jobs are started and QC'd there.
            "plates": Plate.objects.filter(
                machine=machine,
                status__in=(Plate.Status.ROUTED, Plate.Status.RUNNING, Plate.Status.FINISHED),
            )
            .annotate(copy_count=Count("copies"))
            .order_by("status_changed_at", "pk"),
            "printable": len(printable),
            # Printed all the same, but laid out on the spot: seconds each, not milliseconds.
            "to_render": sum(not job.has_traveler for job in printable),  # type: ignore[attr-defined]
        },
    )


@require_GET
@operator_required
def station_machine_travelers(request: HttpRequest, slug: str) -> HttpResponse:
    """Every traveler of the machine's queue (running or paused, then next) as one PDF to
    print: the stored PDFs merged, rendering only the jobs that have none (X-Travelers-Rendered
    names them)."""
    machine = get_object_or_404(tenancy.machines_for_operator(request.user), slug=slug)
    queue = machine_queue(machine)
    jobs = queue["now"] + queue["next"]
    if not jobs:
        raise Http404(f"{machine.name} has no jobs queued")
    batch = station.travelers_batch(jobs, now=timezone.now())
    response = _pdf(batch.pdf, f"travelers-{machine.slug}.pdf")
    response["X-Travelers-Rendered"] = " ".join(batch.rendered) or "none"
    return response


@require_GET
@operator_required
def station_machine_labels(request: HttpRequest, slug: str) -> HttpResponse:
    """The bag labels of the machine's queue (the jobs of "Print all travelers"), one PDF for
    the 62 mm label printer, a label per job."""
    machine = get_object_or_404(tenancy.machines_for_operator(request.user), slug=slug)
    queue = machine_queue(machine)
    jobs = queue["now"] + queue["next"]
    if not jobs:
        raise Http404(f"{machine.name} has no jobs queued")
    pdf = render_labels([station.job_label(job) for job in jobs])
    return _pdf(pdf, f"labels-{machine.slug}.pdf")


@require_GET
@operator_required
def station_job_label(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's bag label, 62 x 100 mm, rendered now (a few tenths of a second)."""
    job = get_object_or_404(
        tenancy.jobs_for_operator(request.user).select_related(*JOB_RELATED), pk=job_id
    )
    return _pdf(render_label(station.job_label(job)), f"label-{job.number}.pdf")


def _pdf(pdf: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return file_sandboxed(response)


@require_http_methods(["GET", "POST"])
@operator_required
def station_scan(request: HttpRequest) -> HttpResponse:
    """A scanned or typed code: a job's opens the job; a spool's, sent (POST) from a machine's
    page, loads the spool on that machine, and otherwise opens the spool. A GET changes
    nothing (a link or a reload never loads a spool)."""
    form = request.POST if request.method == "POST" else request.GET
    code = form.get("code", "")
    back = form.get("machine", "")
    machine = (
        tenancy.machines_for_operator(request.user).filter(slug=back).first() if back else None
    )
    spool_id = spools.spool_id_from_code(code)
    if spool_id is not None:
        # A spool of another factory is "not found", as one that does not exist.
        spool = tenancy.spools_for_operator(request.user).filter(pk=spool_id).first()
        if spool is None:
            messages.error(request, f"No spool found for “{code.strip()[:60]}”.")
        elif request.method == "POST" and machine is not None:
            _load(request, spool, machine)
            return redirect("station-machine", slug=machine.slug)
        else:
            return redirect("station-spool", spool_id=spool.pk)
    elif (plate_id := plating.plate_id_from_code(code)) is not None:
        # A plate's traveler: opens the plate (another factory's is not found).
        if tenancy.plates_for_operator(request.user).filter(pk=plate_id).exists():
            return redirect("station-plate", plate_id=plate_id)
        messages.error(request, f"No plate found for “{code.strip()[:60]}”.")
    else:
        job_id = station.job_id_from_code(code)
        # A job of another factory is "not found", word for word as a number nobody has.
        if (
            job_id is not None
            and tenancy.jobs_for_operator(request.user).filter(pk=job_id).exists()
        ):
            return redirect("station-job", job_id=job_id)
        messages.error(request, f"No job found for “{code.strip()[:60]}”.")
    if machine is not None:
        return redirect("station-machine", slug=machine.slug)
    return redirect("station")


def _load(request: HttpRequest, spool: Spool, machine: Machine) -> None:
    """Load the spool on the machine and say what happened (or why not)."""
    try:
        loaded = spools.spool_load(
            spool_id=spool.pk,
            machine_id=machine.pk,
            actor=signed_in_user(request).get_username(),
            now=timezone.now(),
        )
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return
    loaded_spool = loaded.spool
    if not loaded.changed:
        messages.info(request, f"{loaded_spool.number} is already loaded on {machine.name}.")
        return
    said = (
        f"{loaded_spool.number} ({loaded_spool.material.name}, lot {loaded_spool.lot_number}, "
        f"{loaded_spool.remaining_g.normalize():f} g) loaded on {machine.name}"
    )
    if loaded.unloaded is not None:
        said += f"; {loaded.unloaded.number} taken off"
    if loaded.moved_from:
        said += f" (it was on {loaded.moved_from})"
    messages.success(request, said + ".")


SPOOL_RELATED = ("material", "site", "loaded_on")


@require_GET
@operator_required
def station_site_spools(request: HttpRequest, slug: str) -> HttpResponse:
    """A site's spools and its stock per material."""
    site = get_object_or_404(tenancy.sites_for_operator(request.user), slug=slug)
    return render(
        request,
        "production/station_spools.html",
        {
            "site": site,
            "stock": spools.site_stock([site]).get(site.pk, []),
            "spools": tenancy.spools_for_operator(request.user)
            .filter(site=site)
            .select_related(*SPOOL_RELATED)
            .order_by("material__name", "-remaining_g", "pk"),
        },
    )


@require_GET
@operator_required
def station_spool(request: HttpRequest, spool_id: int) -> HttpResponse:
    """A spool: what it holds, where it is loaded, its bookings; load it on a machine."""
    spool = get_object_or_404(
        tenancy.spools_for_operator(request.user).select_related(*SPOOL_RELATED), pk=spool_id
    )
    machines = tenancy.machines_for_operator(request.user).filter(
        site_id=spool.site_id, process=Process.FDM
    )
    return render(
        request,
        "production/station_spool.html",
        {
            "spool": spool,
            "machines": machines,
            "chosen": request.GET.get("machine", ""),
            "bookings": spool.bookings.select_related("job").order_by("-at", "-pk")[:50],
        },
    )


@require_GET
@operator_required
def station_spool_label(request: HttpRequest, spool_id: int) -> HttpResponse:
    """The spool's label, 62 x 62 mm: its number as a barcode and a QR code to scan."""
    spool = get_object_or_404(
        tenancy.spools_for_operator(request.user).select_related(*SPOOL_RELATED), pk=spool_id
    )
    return _pdf(render_spool_label(station.spool_label(spool)), f"spool-{spool.number}.pdf")


@require_POST
@operator_required
def station_spool_action(request: HttpRequest, spool_id: int, action: str) -> HttpResponse:
    """Load the spool on a machine (of its site, in the user's factory) or take it off."""
    spool = get_object_or_404(tenancy.spools_for_operator(request.user), pk=spool_id)
    if action == "load":
        slug = request.POST.get("machine", "")
        machine = tenancy.machines_for_operator(request.user).filter(slug=slug).first()
        if machine is None:
            messages.error(request, "Pick a machine to load the spool on.")
        else:
            _load(request, spool, machine)
    elif action == "unload":
        try:
            spools.spool_unload(
                spool_id=spool.pk, actor=signed_in_user(request).get_username(), now=timezone.now()
            )
            messages.success(request, f"{spool.number} taken off.")
        except DomainError as refusal:
            messages.error(request, str(refusal))
    else:
        raise Http404(f"no spool action {action!r}")
    return redirect("station-spool", spool_id=spool.pk)


def allowed_actions(job: Job) -> set[str]:
    """What the job page offers now; the services refuse anything else all the same."""
    machine = job.machine
    manual = machine is not None and not machine.is_connected
    if job.plate_copies.exists():  # made on plates: run and QC'd there (plate_views)
        return {"measure"} if job.status == Status.AWAITING_QC else set()
    if job.status in station.NOT_STARTED and manual:
        return {"start"}
    if job.status == Status.RUNNING and manual:
        return {"pause", "finish"}
    if job.status == Status.PAUSED and manual:
        return {"continue", "scrap"}  # scrapping stops the print for good (station.job_qc)
    if job.status == Status.AWAITING_QC:
        return {"measure", "pass", "scrap"}
    return set()


@require_GET
@operator_required
def station_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(
        tenancy.jobs_for_operator(request.user)
        .select_related(*JOB_RELATED, "replaces")
        .prefetch_related("events", "job_artifacts", "replacements"),
        pk=job_id,
    )
    traveler = _traveler_or_none(job)
    checks = traveler.qc_checks if traveler else ()
    measured = {m.label: m for m in station.measurements_for(job.measurements, checks)}
    plate_copies = list(job.plate_copies.select_related("plate").order_by("copy_index"))
    # What the job cost: the factory's managers and staff only (operators see no prices).
    managed = tenancy.jobs_for_operator(request.user, roles=tenancy.MANAGER_ROLES)
    cost = (
        costing.job_cost(job_costs.job_facts(job), rates=job_costs.cost_rates(), now=timezone.now())
        if managed.filter(pk=job.pk).exists()
        else None
    )
    return render(
        request,
        "production/station_job.html",
        {
            "job": job,
            "traveler": traveler,
            "checks": [(check, measured.get(check.label)) for check in checks],
            "actions": allowed_actions(job),
            "scrap_reasons": station.SCRAP_REASONS,
            "progress": station.line_progress(job.line),
            "has_traveler": any(
                link.kind == Artifact.Kind.TRAVELER for link in job.job_artifacts.all()
            ),
            "bookings": job.spool_bookings.select_related("spool").order_by("pk"),
            # Each file and input against its passport entry: a changed file shows as such.
            "passport": passport.passport_check(job),
            "passport_url": passport.passport_url(job),
            "cost": cost,
            # Its copies' plates (#13): where each copy stands and how it came out of QC.
            "plate_copies": plate_copies,
            # Measured copy by copy (QC of a plate): the ones still to judge on finished plates.
            "copies_to_measure": [
                c
                for c in plate_copies
                if c.plate.status == Plate.Status.FINISHED and c.qc == PlateCopy.Qc.PENDING
            ],
            "copy_measurements": [
                (c, station.measurements_for(c.measurements, checks))
                for c in plate_copies
                if c.measurements
            ],
        },
    )


@require_GET
@operator_required
def station_order_costs(request: HttpRequest, order_id: int) -> HttpResponse:
    """What an order's jobs at the factory cost against the price it was quoted: the
    factory's managers and staff. An order with no job at the user's sites is not found; its
    operators get 403 (they see the jobs, not the prices)."""
    if not tenancy.jobs_for_operator(request.user).filter(line__order_id=order_id).exists():
        raise Http404("no such order at your sites")
    managed = tenancy.jobs_for_operator(request.user, roles=tenancy.MANAGER_ROLES)
    if not managed.filter(line__order_id=order_id).exists():
        raise PermissionDenied("costs are for the factory's managers")
    order = job_costs.order_costs(order_ids=[order_id], jobs=managed, now=timezone.now())[order_id]
    return render(request, "production/station_order_costs.html", {"order": order})


def _traveler_or_none(job: Job) -> Traveler | None:
    try:
        return station.job_traveler(job, now=timezone.now())
    except Artifact.DoesNotExist:  # not through the pipeline's files yet
        return None
    except OSError:  # a file gone from storage: the passport section says which
        return None


@require_GET
@operator_required
def station_job_traveler(request: HttpRequest, job_id: int) -> HttpResponseBase:
    """The job's traveler PDF to reprint: rendered now when its spool is known, so the lot
    line is filled in (station.job_traveler_reprint), when the job was routed to another site
    than the one it names, or when the worker has not rendered it yet (it does so beside
    routing, #19); else as the worker rendered it. 404 while the job has no G-code."""
    job = get_object_or_404(
        tenancy.jobs_for_operator(request.user).select_related(*JOB_RELATED), pk=job_id
    )
    reprint = station.job_traveler_reprint(job, now=timezone.now())
    if reprint is not None:
        return _pdf(reprint, f"traveler-{job.number}.pdf")
    link = (
        JobArtifact.objects.select_related("artifact")
        .filter(job=job, kind=Artifact.Kind.TRAVELER)
        .first()
    )
    if link is None or station.stored_traveler(job, link.artifact) is None:
        traveler = _traveler_or_none(job)
        if traveler is None or not job.toolpath_meta:
            raise Http404(f"{job.number} has no G-code yet: no traveler to print")
        return _pdf(render_traveler(traveler), f"traveler-{job.number}.pdf")
    return file_response(
        link.artifact.file.open("rb"),
        content_type="application/pdf",
        filename=f"traveler-{job.number}.pdf",
        attachment=False,  # opened in the tablet's PDF viewer, to print
    )


@require_POST
@operator_required
def station_job_action(request: HttpRequest, job_id: int, action: str) -> HttpResponse:
    job = get_object_or_404(
        tenancy.jobs_for_operator(request.user).select_related(*JOB_RELATED), pk=job_id
    )
    now, operator = timezone.now(), signed_in_user(request)
    try:
        if action in ("start", "pause", "continue", "finish"):
            service = {
                "start": station.job_start,
                "pause": station.job_pause,
                "continue": station.job_continue,
                "finish": station.job_finish,
            }[action]
            moved = service(job_id=job.pk, operator=operator, now=now)
            messages.success(request, f"{job.number}: {action} recorded.")
            warning = spools.start_warning(moved) if action == "start" else None
            if warning:
                messages.warning(request, warning + ".")
        elif action == "measure" and job.plate_copies.exists():  # copy by copy
            checks = _checks(job)
            copy = job.plate_copies.filter(pk=_count(request.POST.get("copy"), default=0)).first()
            if copy is None:
                raise DomainError("choose which copy was measured")
            outside = plating.copy_measure(
                plate_id=copy.plate_id, copy_id=copy.pk, values=_measured_values(request, checks),
                checks=checks, operator=operator, now=now,
            )  # fmt: skip
            for m in outside:
                messages.error(request, f"{m.label} {m.value:g} mm is out of tolerance: QC failed.")
            if not outside:
                messages.success(request, f"Measurements of copy {copy.copy_index} saved.")
        elif action == "measure":
            checks = _checks(job)
            values = _measured_values(request, checks)
            outside = station.job_measure(
                job_id=job.pk, values=values, checks=checks, operator=operator, now=now
            )
            for m in outside:
                messages.error(request, f"{m.label} {m.value:g} mm is out of tolerance: QC failed.")
            if not outside:
                messages.success(request, "Measurements saved.")
        elif action == "pass":
            station.job_qc(
                job_id=job.pk,
                passed=job.quantity,
                scrapped=0,
                checks=_checks(job),
                operator=operator,
                now=now,
            )
            messages.success(request, f"{job.number}: QC passed.")
        elif action == "scrap":
            scrapped = _count(request.POST.get("scrapped"), default=job.quantity)
            replacement = station.job_qc(
                job_id=job.pk,
                passed=job.quantity - scrapped,
                scrapped=scrapped,
                checks=_checks(job),
                reason=_scrap_reason(request),
                operator=operator,
                now=now,
            )
            if replacement is not None:
                messages.success(
                    request,
                    f"{job.number}: {scrapped} scrapped; {replacement.number} remakes them.",
                )
        else:
            raise Http404(f"no station action {action!r}")
    except DomainError as refusal:
        messages.error(request, str(refusal))
    return redirect("station-job", job_id=job.pk)


def _checks(job: Job) -> tuple[TravelerCheck, ...]:
    traveler = _traveler_or_none(job)
    return traveler.qc_checks if traveler else ()


def _measured_values(request: HttpRequest, checks: tuple[TravelerCheck, ...]) -> dict[str, float]:
    values = {}
    for i, check in enumerate(checks):
        raw = request.POST.get(f"m{i}", "").strip().replace(",", ".")
        if not raw:
            continue
        try:
            values[check.label] = float(raw)
        except ValueError:
            raise DomainError(f"{check.label}: “{raw[:20]}” is not a number") from None
    return values


def _count(raw: str | None, *, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"“{raw[:20]}” is not a whole number of parts") from None


def _scrap_reason(request: HttpRequest) -> str:
    labels = dict(station.SCRAP_REASONS)
    chosen = labels.get(request.POST.get("reason", ""), "")
    note = request.POST.get("note", "").strip()[:500]
    return ": ".join(part for part in (chosen, note) if part)

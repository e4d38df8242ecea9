"""The floor view's pages (production.floor): all the user's sites or one, the live part htmx
fetches every few seconds, and the form that moves a waiting job.

Who gets in is the station's rule (production.views.operator_required, production.tenancy): the
operators and managers of the factory that runs a site, and staff; a site or job of another
factory answers 404. Moves are POSTs that answer with a redirect and a message: a refusal is a
message, never an error page.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from microfactory.accounts.signed_in import signed_in_user
from microfactory.errors import DomainError
from production import floor, plating, tenancy
from production.models import Job, Plate
from production.views import JOB_RELATED, operator_required

# How often the live part of the page asks for fresh values (htmx polling).
REFRESH_S = 5


def _floor(request: HttpRequest, slug: str | None) -> floor.Floor:
    sites = tenancy.sites_for_operator(request.user)
    if slug is not None:
        sites = sites.filter(slug=slug)
        if not sites.exists():
            raise Http404("no such site on your floor")
    return floor.floor_read(sites, now=timezone.now())


def _context(request: HttpRequest, slug: str | None) -> dict[str, object]:
    return {
        "floor": _floor(request, slug),
        "site_slug": slug,
        "refresh_s": REFRESH_S,
        "all_sites": tenancy.sites_for_operator(request.user).order_by("name"),
        "here": request.get_full_path(),
    }


@require_GET
@operator_required
def floor_page(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    return render(request, "production/floor.html", _context(request, slug))


@never_cache
@require_GET
@operator_required
def floor_live(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The tiles and timelines alone, for htmx to swap in."""
    context = _context(request, slug)
    context["here"] = request.GET.get("back", "")
    return render(request, "production/_floor_live.html", context)


def _back(request: HttpRequest, job: Job) -> str:
    back = request.POST.get("back") or request.GET.get("back") or ""
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    site = job.machine.site.slug if job.machine else None
    return f"/station/floor/{site}/" if site else "/station/floor/"


@require_http_methods(["GET", "POST"])
@operator_required
def floor_move(request: HttpRequest, job_id: int) -> HttpResponse:
    """GET: where the waiting job could go (capable machines first) and its place in the
    queue. POST `machine` (a slug): move it there; POST `up` / `front`: up its queue."""
    job = get_object_or_404(
        tenancy.jobs_for_operator(request.user).select_related(*JOB_RELATED), pk=job_id
    )
    back = _back(request, job)
    if request.method == "POST":
        now, operator = timezone.now(), signed_in_user(request)
        try:
            if "machine" in request.POST:
                slug = request.POST["machine"]
                target = tenancy.machines_for_operator(request.user).filter(slug=slug).first()
                if target is None:
                    raise DomainError(f"no machine {slug[:100]!r} on your floor")
                floor.job_move_to_machine(
                    job_id=job.pk, machine_id=target.pk, operator=operator, now=now
                )
                messages.success(request, f"{job.number} moved to {target.name}.")
            elif "up" in request.POST or "front" in request.POST:
                place = floor.job_move_up(
                    job_id=job.pk, operator=operator, now=now, to_front="front" in request.POST
                )
                messages.success(request, f"{job.number} is now #{place} in its queue.")
            else:
                raise DomainError("say where to move the job: a machine, up or to the front")
        except DomainError as refusal:
            messages.error(request, str(refusal))
        return redirect(back)
    targets: list[tuple[object, str | None]] = []
    if job.status in floor.NOT_STARTED and job.machine is not None:
        candidates = tenancy.machines_for_operator(request.user).select_related("site")
        targets = list(floor.move_targets(job, candidates))
    return render(
        request,
        "production/floor_move.html",
        {"job": job, "targets": targets, "back": back, "waiting": job.status in floor.NOT_STARTED},
    )


@require_http_methods(["GET", "POST"])
@operator_required
def floor_plate_move(request: HttpRequest, plate_id: int) -> HttpResponse:
    """GET: the machines a routed plate could go to (capable ones first). POST `machine` (a
    slug): move it there, its jobs with it. A plate is not moved up its queue."""
    plate = get_object_or_404(
        tenancy.plates_for_operator(request.user).select_related("machine__site", "material"),
        pk=plate_id,
    )
    back = request.POST.get("back") or request.GET.get("back") or ""
    if not (back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})):
        back = f"/station/floor/{plate.machine.site.slug}/" if plate.machine else "/station/floor/"
    if request.method == "POST":
        slug = request.POST.get("machine", "")
        try:
            target = tenancy.machines_for_operator(request.user).filter(slug=slug).first()
            if target is None:
                raise DomainError(f"no machine {slug[:100]!r} on your floor")
            floor.plate_move_to_machine(
                plate_id=plate.pk, machine_id=target.pk, operator=signed_in_user(request),
                now=timezone.now(),
            )  # fmt: skip
            messages.success(request, f"{plate.number} moved to {target.name}.")
        except DomainError as refusal:
            messages.error(request, str(refusal))
        return redirect(back)
    waiting = plate.status == Plate.Status.ROUTED and plate.machine is not None
    jobs = plating.plate_jobs([plate])[plate.pk]
    targets: list[tuple[object, str | None]] = []
    if waiting and jobs:
        candidates = tenancy.machines_for_operator(request.user).select_related("site")
        targets = list(floor.plate_move_targets(plate, jobs, candidates))
    return render(
        request,
        "production/floor_plate_move.html",
        {
            "plate": plate,
            "jobs": jobs,
            "copies": plate.copies.count(),
            "targets": targets,
            "back": back,
            "waiting": waiting,
            "not_up": floor.PLATE_NOT_MOVED,
        },
    )


@require_GET
@login_required
def after_login(request: HttpRequest) -> HttpResponse:
    """Where a login lands (LOGIN_REDIRECT_URL): the operators and managers of a factory on
    its floor view, everyone else (customers, staff) on the catalog as before."""
    user = request.user
    works_on_floor = not getattr(user, "is_staff", False) and tenancy.is_operator(user)
    return redirect("floor" if works_on_floor else "home")

"""Shop-floor pages. The traveler's QR code opens a job's station page."""

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from production.models import Job


@login_required
def station_job(request: HttpRequest, job_id: int) -> HttpResponse:
    jobs = Job.objects.select_related(
        "line__revision__family", "line__material", "line__order", "machine__site"
    ).prefetch_related("events", "job_artifacts")
    if not request.user.is_staff:
        jobs = jobs.filter(Q(line__order__organisation__memberships__user=request.user))
    job = get_object_or_404(jobs, pk=job_id)
    return render(request, "production/station_job.html", {"job": job})

"""The passport page: what the traveler's QR code opens.

Public to whoever holds the URL: its token (128 random bits) is printed only on the job's
traveler, so the paper that travels with the part is the key. The page shows hashes, the
chain and whether its signatures verify, never who ordered the part or anything else about
the order. An operator who scans it is offered the job's station page.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from production import passport, tenancy
from production.models import Job


@require_GET
@never_cache
def passport_page(
    request: HttpRequest, job_id: int, token: str, copy: int | None = None
) -> HttpResponse:
    job = Job.objects.filter(pk=job_id).only("pk", "quantity", "passport_token").first()
    # The same 404 for a wrong token as for no job: the page tells nothing without the token.
    if job is None or not constant_time_compare(token, job.passport_token):
        raise Http404("no such passport")
    if copy is not None and not 1 <= copy <= job.quantity:
        raise Http404(f"{job.number} has {job.quantity} copies")
    response = render(
        request,
        "production/passport.html",
        {
            "job": job,
            "copy": copy,
            "copies": range(1, job.quantity + 1),
            "passport": passport.passport_verify(job),
            "passport_url": passport.passport_url(job),
            "operator": tenancy.jobs_for_operator(request.user).filter(pk=job.pk).exists(),
        },
    )
    # The token is the key: never sent on to another site, never indexed.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response

"""Artifact downloads: for the organisation that ordered the job, and for the operators and
managers of the factory where it is made (production.tenancy); anyone else gets 404."""

from django.db.models import Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from microfactory.downloads import file_response
from orders.models import Membership
from production import tenancy
from production.models import Artifact, JobArtifact

CONTENT_TYPES: dict[str, tuple[str, str]] = {
    Artifact.Kind.STEP: ("application/step", "step"),
    Artifact.Kind.STL: ("model/stl", "stl"),
    Artifact.Kind.REPAIRED: ("model/stl", "repaired.stl"),
    Artifact.Kind.SVG: ("image/svg+xml", "svg"),
    Artifact.Kind.GCODE: ("text/x-gcode", "gcode"),
    Artifact.Kind.TRAVELER: ("application/pdf", "pdf"),
}


class JobArtifactApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, job_id: int, kind: str) -> FileResponse:
        user_id = request.user.pk  # None only for anonymous users, whom the API turns away
        member_of = Membership.objects.filter(user_id=user_id or 0).values("organisation")
        link = get_object_or_404(
            JobArtifact.objects.select_related("artifact", "job").filter(
                # Subqueries, not joins: a join through the memberships would repeat the row
                # once per member of the ordering organisation when the second half holds.
                Q(job__line__order__organisation__in=member_of)
                | Q(job__in=tenancy.jobs_for_operator(request.user))
            ),
            job_id=job_id,
            kind=kind,
        )
        content_type, extension = CONTENT_TYPES[link.kind]
        # Every kind, the drawing too, is a sandboxed attachment: a drawing opened from the
        # order page is saved, never rendered on our origin.
        return file_response(
            link.artifact.file.open("rb"),
            content_type=content_type,
            filename=f"{link.job.number}.{extension}",
        )

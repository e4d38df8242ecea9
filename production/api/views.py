"""Artifact downloads, scoped to the organisation that ordered the job."""

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from microfactory.downloads import file_response
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
    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=Artifact.Kind.values)
        ],
        responses={
            (200, *sorted({t for t, _ in CONTENT_TYPES.values()})): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request, job_id: int, kind: str) -> FileResponse:
        link = get_object_or_404(
            JobArtifact.objects.select_related("artifact", "job").filter(
                job__line__order__organisation__memberships__user=request.user.pk
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

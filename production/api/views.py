"""Artifact downloads and the part passport: for the organisation that ordered the job, and for
the operators and managers of the factory where it is made (production.tenancy); anyone else
gets 404."""

from pathlib import PurePosixPath

from django.db.models import Q, QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from microfactory.downloads import file_response
from orders.models import Membership
from production import passport, tenancy
from production.models import Artifact, Job, JobArtifact, PassportEntry

CONTENT_TYPES: dict[str, tuple[str, str]] = {
    Artifact.Kind.STEP: ("application/step", "step"),
    Artifact.Kind.STL: ("model/stl", "stl"),
    Artifact.Kind.REPAIRED: ("model/stl", "repaired.stl"),
    Artifact.Kind.SVG: ("image/svg+xml", "svg"),
    Artifact.Kind.GCODE: ("text/x-gcode", "gcode"),
    Artifact.Kind.TRAVELER: ("application/pdf", "pdf"),
}
# A milled or laser-cut job's program rendering: a PNG (the simulated part) or an SVG (the
# cut paths), told apart by its file's name.
RENDER_TYPES: dict[str, tuple[str, str]] = {
    ".png": ("image/png", "png"),
    ".svg": ("image/svg+xml", "svg"),
}


def jobs_for_reader(request: Request) -> QuerySet[Job]:
    """The jobs whose files and passport this user may read: those its organisation ordered and
    those made at its factory's sites."""
    user_id = request.user.pk  # None only for anonymous users, whom the API turns away
    member_of = Membership.objects.filter(user_id=user_id or 0).values("organisation")
    # Subqueries, not joins: a join through the memberships would repeat the row once per
    # member of the ordering organisation when the second half holds.
    return Job.objects.filter(
        Q(line__order__organisation__in=member_of)
        | Q(pk__in=tenancy.jobs_for_operator(request.user).values("pk"))
    )


class JobArtifactApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=Artifact.Kind.values)
        ],
        responses={
            (
                200,
                *sorted({t for t, _ in (*CONTENT_TYPES.values(), *RENDER_TYPES.values())}),
            ): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request, job_id: int, kind: str) -> FileResponse:
        link = (
            JobArtifact.objects.select_related("artifact", "job")
            .filter(job__in=jobs_for_reader(request), job_id=job_id, kind=kind)
            .first()
        )
        if link is None:
            preparing = kind == Artifact.Kind.TRAVELER and (
                jobs_for_reader(request).filter(pk=job_id, toolpath_meta__isnull=False).exists()
            )
            # The worker renders a traveler beside routing (#19): seconds after the G-code.
            raise NotFound(
                "the traveler is being prepared: try again in a few seconds"
                if preparing
                else "no such file for this job"
            )
        if link.kind == Artifact.Kind.RENDER:
            suffix = PurePosixPath(link.artifact.file.name).suffix.lower()
            content_type, extension = RENDER_TYPES.get(suffix, ("application/octet-stream", "bin"))
        elif link.kind in CONTENT_TYPES:
            content_type, extension = CONTENT_TYPES[link.kind]
        else:  # a kind kept for the worker (a DFM report), not a file of the job's
            raise NotFound("no such file for this job")
        # Every kind, the drawing too, is a sandboxed attachment: a drawing opened from the
        # order page is saved, never rendered on our origin.
        return file_response(
            link.artifact.file.open("rb"),
            content_type=content_type,
            filename=f"{link.job.number}.{extension}",
        )


class PassportEntrySerializer(serializers.Serializer[passport.EntryView]):
    seq = serializers.IntegerField(min_value=0)
    kind = serializers.ChoiceField(choices=PassportEntry.Kind.choices)
    name = serializers.CharField()
    sha256 = serializers.CharField(help_text="sha256 of the input or file (hex)")
    prev_chain_hash = serializers.CharField(help_text="64 zeros for the first entry")
    chain_hash = serializers.CharField(help_text="sha256(prev_chain_hash + kind + sha256)")
    public_key = serializers.CharField(help_text="Ed25519 public key that signed (hex)")
    signature = serializers.CharField(
        help_text="Ed25519 over 'microfactory-passport/1 <job number> <seq> <chain hash>'"
    )
    chain_ok = serializers.BooleanField()
    signed_by = serializers.ChoiceField(choices=["current", "retired", "unknown"])
    signature_ok = serializers.BooleanField()


class PassportOutputSerializer(serializers.Serializer[passport.Verification]):
    job = serializers.CharField(source="job_number")
    url = serializers.SerializerMethodField()
    public_key = serializers.CharField(help_text="the key passports are signed with (hex)")
    verified = serializers.BooleanField(
        help_text="the chain is whole and every entry is signed by a trusted key"
    )
    entries = PassportEntrySerializer(many=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, verification: passport.Verification) -> str:
        """The passport page, as the traveler's QR code encodes it."""
        url: str = self.context["url"]
        return url


class JobPassportApi(APIView):
    """The job's passport: its chain of sha256 hashes, each entry's link and signature checked
    here, and the public key to check them yourself (docs/shop-floor.md, "Part passport")."""

    @extend_schema(responses=PassportOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(jobs_for_reader(request), pk=job_id)
        output = PassportOutputSerializer(
            passport.passport_verify(job), context={"url": passport.passport_url(job)}
        )
        return Response(output.data)

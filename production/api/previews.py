"""GET /api/v1/previews/<key>/dfm/: a ready catalog preview's DFM report in a material,
checked by a worker against the machines that could make it (production.dfm_previews)."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.views import preview_for_key
from catalog.models import PartPreview
from microfactory.schema import ErrorSerializer
from production.dfm_previews import preview_dfm_request
from production.models import PreviewDfm

# The DFM report as production.pipeline.validation.ValidationReport.to_json() writes it
# (docs/validation.md, "The stored report"): declared here so the OpenAPI schema shows it.


class DfmCheckSerializer(serializers.Serializer[Any]):  # describes the response only
    name = serializers.CharField(help_text="e.g. min_wall, overhang, build_volume")
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    value = serializers.CharField(help_text="what was measured, with its unit")
    limit = serializers.CharField(help_text="what it was measured against")
    message = serializers.CharField(help_text="what is wrong and what to change, in plain words")
    machine = serializers.CharField(help_text="the machine it was measured for; empty: any")


class OrientationSerializer(serializers.Serializer[Any]):  # describes the response only
    # DRF's metaclass takes declared fields off the class, so this does not replace Field.label;
    # the stubs see only the class attribute.
    label = serializers.CharField()  # type: ignore[assignment]
    down = serializers.ListField(child=serializers.FloatField(), help_text="faces the bed")
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="4 x 4 rotation from model to print coordinates",
    )
    extents_mm = serializers.ListField(child=serializers.FloatField())
    height_mm = serializers.FloatField()
    support_area_mm2 = serializers.FloatField()
    support_volume_mm3 = serializers.FloatField(
        help_text="the support's volume to the bed: what the choice weighs"
    )
    contact_area_mm2 = serializers.FloatField()
    base_width_mm = serializers.FloatField()
    stable = serializers.BooleanField()
    fits = serializers.BooleanField()
    cost = serializers.FloatField()


class MachineReportSerializer(serializers.Serializer[Any]):  # describes the response only
    key = serializers.CharField(help_text="the machine's slug")
    process = serializers.CharField()
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    checks = DfmCheckSerializer(many=True)


class DfmReportSerializer(serializers.Serializer[Any]):  # describes the response only
    status = serializers.ChoiceField(
        choices=["pass", "warn", "fail"], help_text="fail: no machine can make it"
    )
    readable = serializers.BooleanField()
    file_format = serializers.CharField()
    volume_mm3 = serializers.FloatField()
    area_mm2 = serializers.FloatField()
    extents_mm = serializers.ListField(child=serializers.FloatField(), help_text="as modelled")
    triangles = serializers.IntegerField()
    bodies = serializers.IntegerField()
    fits = serializers.ListField(child=serializers.CharField(), help_text="machine slugs")
    capable = serializers.ListField(
        child=serializers.CharField(), help_text="machines on which no check fails"
    )
    checks = DfmCheckSerializer(many=True, help_text="the part's, then the best machine's")
    orientation = OrientationSerializer(allow_null=True, help_text="chosen print orientation")
    orientation_candidates = OrientationSerializer(many=True)
    machines = MachineReportSerializer(many=True)


class PreviewDfmSerializer(serializers.ModelSerializer[PreviewDfm]):
    preview = serializers.CharField(source="preview.key")
    material = serializers.CharField(source="material.slug")
    status = serializers.ChoiceField(
        choices=PreviewDfm.Status.choices,
        help_text="queued or checking: ask again; ready: see `report`; failed: see `message`",
    )
    report = DfmReportSerializer(allow_null=True, help_text="once ready")

    class Meta:
        model = PreviewDfm
        fields = ["preview", "material", "status", "message", "report", "finished_at"]


class DfmQuerySerializer(serializers.Serializer[Any]):  # input only: no instance
    material = serializers.SlugField(help_text="the material's slug, one the part is offered in")


class PreviewDfmApi(APIView):
    """A ready preview's DFM report in a material: every check (status, measured value,
    limit, message), per machine with the material loaded, the verdict and the chosen print
    orientation. 202 while a worker checks it (a second or so), 200 once ready or failed."""

    @extend_schema(
        parameters=[DfmQuerySerializer],
        responses={
            200: PreviewDfmSerializer,
            202: PreviewDfmSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The preview is not built yet, or could not be."
            ),
        },
    )
    def get(self, request: Request, key: str) -> Response:
        preview = preview_for_key(key)
        query = DfmQuerySerializer(data=request.query_params)
        if not query.is_valid():
            errors = {k: [str(e) for e in v] for k, v in query.errors.items()}
            return Response({"message": "the query has errors", "errors": errors}, status=400)
        slug = query.validated_data["material"]
        material = preview.revision.materials.filter(slug=slug, active=True).first()
        if material is None:
            offered = ", ".join(
                preview.revision.materials.filter(active=True).values_list("slug", flat=True)
            )
            return Response(
                {
                    "message": "the part is not offered in that material",
                    "errors": {"material": [f"'{slug}' is not one of: {offered}"]},
                },
                status=400,
            )
        if preview.status == PartPreview.Status.FAILED:
            return Response(
                {"message": f"the part cannot be built with these values: {preview.message}"},
                status=409,
            )
        if preview.status != PartPreview.Status.READY:
            return Response(
                {
                    "message": f"the preview is {preview.status}: ask again once "
                    f"{reverse('api:preview-detail', args=[key])} says ready"
                },
                status=409,
            )
        dfm = preview_dfm_request(preview=preview, material=material)
        return Response(PreviewDfmSerializer(dfm).data, status=200 if dfm.is_finished else 202)

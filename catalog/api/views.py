"""The catalog API: search the parts, read one with its parameter schema, check a
configuration, preview it in 3D (a sandboxed build on the `geometry` queue), and read the
preview's DFM report in a material (checked by a worker against the machines that could
make it).

Retired parts are hidden: listed nowhere, and a 404 everywhere else.
"""

from typing import Any

import django_filters
from django.db.models import Prefetch, Q, QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Material, PartFamily, PartPreview, PartRevision, PreviewDfm, Process
from catalog.parameters import (
    ParameterError,
    SchemaError,
    parameters_hash,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from catalog.previews import TooManyPreviews, preview_dfm_request, preview_request
from microfactory.errors import DomainError

# A configuration is a handful of short values; anything much bigger is refused before the
# schema sees it, so a megabyte string costs a length check, not a number parse.
MAX_PARAMETERS = 100
MAX_NAME_CHARS = 100
MAX_VALUE_CHARS = 200

PREVIEW_FILES = {
    "glb": "model/gltf-binary",
    "svg": "image/svg+xml",
    "stl": "model/stl",
}


def _families() -> QuerySet[PartFamily]:
    """Orderable families, each with its published revisions newest first."""
    published = PartRevision.objects.filter(published_at__isnull=False).order_by("-number")
    return PartFamily.objects.filter(retired=False).prefetch_related(
        Prefetch("revisions", published.prefetch_related("materials"), to_attr="published")
    )


def _published(family: PartFamily) -> list[PartRevision]:
    """The family's published revisions, newest first, as _families() prefetched them."""
    # The Prefetch's to_attr adds the attribute at run time; the model does not declare it.
    revisions: list[PartRevision] = family.published  # type: ignore[attr-defined]
    return revisions


def _current(family: PartFamily) -> PartRevision:
    published = _published(family)
    if not published:
        raise DomainError(f"'{family.name}' has no published revision yet")
    return published[0]


# --- serializers ----------------------------------------------------------------------------


class MaterialSerializer(serializers.ModelSerializer[Material]):
    class Meta:
        model = Material
        fields = ["slug", "name"]


class RevisionSerializer(serializers.ModelSerializer[PartRevision]):
    materials = MaterialSerializer(many=True, read_only=True)

    class Meta:
        model = PartRevision
        fields = [
            "number",
            "kind",
            "checksum",
            "process",
            "parameter_schema",
            "rules",
            "materials",
            "description",
            "work_instructions",
            "qc_checks",
            "published_at",
        ]


class PartSerializer(serializers.ModelSerializer[PartFamily]):
    tags = serializers.ListField(child=serializers.CharField(), source="tag_list")
    revision = serializers.SerializerMethodField(help_text="the current published revision")
    url = serializers.SerializerMethodField()

    class Meta:
        model = PartFamily
        fields = ["slug", "name", "category", "tags", "description", "url", "revision"]

    @extend_schema_field(RevisionSerializer(allow_null=True))
    def get_revision(self, family: PartFamily) -> dict[str, Any] | None:
        published = _published(family)
        return RevisionSerializer(published[0]).data if published else None

    def get_url(self, family: PartFamily) -> str:
        return reverse("api:part-detail", args=[family.slug])


class ParametersInputSerializer(serializers.Serializer[Any]):  # input only: no instance
    parameters = serializers.DictField(
        child=serializers.JSONField(), allow_empty=True, help_text="name: value, e.g. bore_d: 25"
    )


class ValidatedSerializer(serializers.Serializer[Any]):  # describes the response only
    parameters = serializers.DictField(help_text="canonical values: sorted, numbers normalised")
    parameters_hash = serializers.CharField()


class PreviewSerializer(serializers.ModelSerializer[PartPreview]):
    id = serializers.CharField(source="key")
    part = serializers.CharField(source="revision.family.slug")
    revision = serializers.IntegerField(source="revision.number")
    url = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField(help_text="download URLs once ready")
    dfm_url = serializers.SerializerMethodField()

    class Meta:
        model = PartPreview
        fields = [
            "id",
            "url",
            "status",
            "message",
            "part",
            "revision",
            "parameters",
            "bbox_mm",
            "volume_mm3",
            "files",
            "dfm_url",
            "created_at",
            "finished_at",
        ]

    def get_url(self, preview: PartPreview) -> str:
        return reverse("api:preview-detail", args=[preview.key])

    @extend_schema_field(
        serializers.CharField(help_text="its DFM report in a material: add ?material=<slug>")
    )
    def get_dfm_url(self, preview: PartPreview) -> str:
        return reverse("api:preview-dfm", args=[preview.key])

    @extend_schema_field(
        {"type": "object", "properties": {kind: {"type": "string"} for kind in PREVIEW_FILES}}
    )
    def get_files(self, preview: PartPreview) -> dict[str, str]:
        if preview.status != PartPreview.Status.READY:
            return {}
        return {
            kind: reverse("api:preview-file", args=[preview.key, kind]) for kind in PREVIEW_FILES
        }


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


class ErrorSerializer(serializers.Serializer[Any]):  # describes the response only
    message = serializers.CharField()
    # Declared fields are taken off the class (as for `label` above): Serializer.errors stays.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# --- configurations -------------------------------------------------------------------------


class ParametersInvalid(Exception):
    """A configuration's field errors, keyed by parameter name."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("the parameters have errors")


def _canonical(revision: PartRevision, data: Any) -> dict[str, Any]:
    """The configuration's canonical values, or ParametersInvalid with field errors."""
    serializer = ParametersInputSerializer(data=data)
    if not serializer.is_valid():
        raise ParametersInvalid({k: [str(e) for e in v] for k, v in serializer.errors.items()})
    values = serializer.validated_data["parameters"]
    if len(values) > MAX_PARAMETERS:
        raise ParametersInvalid({"parameters": [f"at most {MAX_PARAMETERS} parameters"]})
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if len(name) > MAX_NAME_CHARS:
            errors[name[:MAX_NAME_CHARS] + "…"] = ["is not a parameter of this part"]
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            errors[name] = [f"is longer than {MAX_VALUE_CHARS} characters"]
        elif isinstance(value, list | dict):
            errors[name] = ["must be a number, a text or true/false"]
    if errors:
        raise ParametersInvalid(errors)
    try:
        return validate_parameters(
            parse_schema(revision.parameter_schema), values, rules=parse_rules(revision.rules)
        )
    except ParameterError as error:
        raise ParametersInvalid(error.errors) from None
    except SchemaError as error:
        raise DomainError(f"this part's definition is broken: {error}") from error


def _invalid(error: ParametersInvalid) -> Response:
    return Response({"message": "the parameters have errors", "errors": error.errors}, status=400)


# --- views ----------------------------------------------------------------------------------


# django-filter ships no type information (ignore_missing_imports in pyproject.toml), so
# FilterSet is Any to mypy and --strict refuses to subclass it.
class PartFilter(django_filters.FilterSet):  # type: ignore[misc]
    q = django_filters.CharFilter(
        method="search", help_text="words in the name, description, category or tags"
    )
    category = django_filters.CharFilter(field_name="category", lookup_expr="iexact")
    process = django_filters.ChoiceFilter(
        choices=Process.choices, method="by_process", help_text="made by this process"
    )
    material = django_filters.CharFilter(method="by_material", help_text="material slug")

    class Meta:
        model = PartFamily
        fields = ["q", "category", "process", "material"]

    def search(self, families: QuerySet[PartFamily], name: str, value: str) -> QuerySet[PartFamily]:
        for word in value.split()[:10]:
            families = families.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Q(category__icontains=word)
                | Q(tags__icontains=word)
            )
        return families

    def by_process(
        self, families: QuerySet[PartFamily], name: str, value: str
    ) -> QuerySet[PartFamily]:
        return families.filter(
            revisions__published_at__isnull=False, revisions__process=value
        ).distinct()

    def by_material(
        self, families: QuerySet[PartFamily], name: str, value: str
    ) -> QuerySet[PartFamily]:
        return families.filter(
            revisions__published_at__isnull=False, revisions__materials__slug=value
        ).distinct()


class PartsApi(ListAPIView[PartFamily]):
    """Search the catalog (paginated): ?q=words&category=&process=&material=."""

    serializer_class = PartSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = PartFilter

    def get_queryset(self) -> QuerySet[PartFamily]:
        return _families().order_by("name")


class PartDetailApi(APIView):
    @extend_schema(responses={200: PartSerializer})
    def get(self, request: Request, slug: str) -> Response:
        family = get_object_or_404(_families(), slug=slug)
        return Response(PartSerializer(family).data)


class PartValidateApi(APIView):
    """Check a configuration of the part's current revision without ordering or building."""

    @extend_schema(
        request=ParametersInputSerializer,
        responses={200: ValidatedSerializer, 400: ErrorSerializer},
    )
    def post(self, request: Request, slug: str) -> Response:
        revision = _current(get_object_or_404(_families(), slug=slug))
        try:
            values = _canonical(revision, request.data)
        except ParametersInvalid as error:
            return _invalid(error)
        return Response({"parameters": values, "parameters_hash": parameters_hash(values)})


class PartPreviewsApi(APIView):
    """Start a 3D preview of a configuration: 202 while it builds, 200 when it is ready
    (built now or before: previews are cached by revision, parameters and engine)."""

    @extend_schema(
        request=ParametersInputSerializer,
        responses={
            200: PreviewSerializer,
            202: PreviewSerializer,
            400: ErrorSerializer,
            429: ErrorSerializer,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        revision = _current(get_object_or_404(_families(), slug=slug))
        try:
            values = _canonical(revision, request.data)
        except ParametersInvalid as error:
            return _invalid(error)
        try:
            preview, _ = preview_request(revision=revision, parameters=values, user=request.user)
        except TooManyPreviews as refusal:
            return Response({"message": str(refusal)}, status=429)
        ready = preview.status == PartPreview.Status.READY
        headers = {} if ready else {"Location": reverse("api:preview-detail", args=[preview.key])}
        return Response(
            PreviewSerializer(preview).data, status=200 if ready else 202, headers=headers
        )


def _preview(key: str) -> PartPreview:
    return get_object_or_404(
        PartPreview.objects.select_related("revision__family"),
        key=key,
        revision__family__retired=False,
    )


class PreviewDetailApi(APIView):
    """A preview's status (queued, building, ready, failed with a message) and, once ready,
    its measurements and file URLs."""

    @extend_schema(responses={200: PreviewSerializer})
    def get(self, request: Request, key: str) -> Response:
        return Response(PreviewSerializer(_preview(key)).data)


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
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def get(self, request: Request, key: str) -> Response:
        preview = _preview(key)
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


class PreviewFileApi(APIView):
    """A ready preview's GLB (the browser viewer's model), SVG drawing or STL mesh."""

    @extend_schema(
        operation_id="v1_previews_file_retrieve",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, key: str, kind: str) -> FileResponse:
        preview = _preview(key)
        if kind not in PREVIEW_FILES or preview.status != PartPreview.Status.READY:
            raise Http404
        return FileResponse(
            getattr(preview, kind).open("rb"),
            content_type=PREVIEW_FILES[kind],
            filename=f"{preview.revision.family.slug}-{preview.key[:12]}.{kind}",
        )

"""The catalog API: search the parts, read one with its parameter schema, check a
configuration, preview it in 3D (a sandboxed build on the `geometry` queue). A preview's DFM
report in a material needs the machines: production.api.previews serves it.

Retired parts are hidden: listed nowhere, and a 404 everywhere else.
"""

from collections.abc import Callable
from functools import cached_property
from typing import Any

import django_filters
from django.db.models import Prefetch, Q, QuerySet
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.cache import catalog_cached
from catalog.models import Material, PartFamily, PartPreview, PartRevision, Process
from catalog.parameters import (
    ParameterError,
    SchemaError,
    parameters_hash,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from catalog.previews import TooManyPreviews, preview_request
from microfactory.downloads import file_response
from microfactory.errors import DomainError
from microfactory.schema import ErrorSerializer

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
    # Customers' uploads (private families) are their organisation's: orders.api.uploads.
    return PartFamily.objects.filter(retired=False, private=False).prefetch_related(
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
    sheet_thicknesses_mm = serializers.ListField(
        child=serializers.FloatField(),
        read_only=True,
        help_text="plate or sheet thicknesses in stock (mm); empty for filament",
    )

    class Meta:
        model = Material
        # The plate or sheet thicknesses a milled or laser-cut part can be made from.
        fields = ["slug", "name", "process", "sheet_thicknesses_mm"]


class RevisionSerializer(serializers.ModelSerializer[PartRevision]):
    materials = MaterialSerializer(many=True, read_only=True)
    processes = serializers.ListField(
        child=serializers.ChoiceField(choices=Process.choices),
        source="allowed_processes",
        read_only=True,
        help_text="every process it can be made by, the primary (`process`) first; an order "
        "line is routed to one of them (docs/ordering.md)",
    )

    class Meta:
        model = PartRevision
        fields = [
            "number",
            "kind",
            "checksum",
            "process",
            "alternative_processes",
            "processes",
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
        return self._revisions.to_representation(published[0]) if published else None

    @cached_property
    def _revisions(self) -> RevisionSerializer:
        """One revision serializer for every part of a list: a ModelSerializer builds its
        fields per instance, which was half the list's time when made per part."""
        return RevisionSerializer(context=self.context)

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
    try:
        labels = {s.name: s.label for s in parse_schema(revision.parameter_schema)}
    except SchemaError:
        labels = {}  # refused below, with the reason
    for name, value in values.items():
        if len(name) > MAX_NAME_CHARS:
            errors[name[:MAX_NAME_CHARS] + "…"] = [
                f"'{name[:40]}…' is not a parameter of this part"
            ]
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            errors[name] = [f"{labels.get(name, name)} is longer than {MAX_VALUE_CHARS} characters"]
        elif isinstance(value, list | dict):
            errors[name] = [f"{labels.get(name, name)} must be a number, a text or true/false"]
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

    # An HttpResponse (cached JSON bytes) where the stubs expect a Response: DRF passes any
    # HttpResponse through.
    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        # The key is the absolute URL because the page links are absolute. A refused filter
        # raises, so only answers are kept.
        return _catalog_answer(
            request,
            f"parts-api:{request.build_absolute_uri()}",
            lambda: super(PartsApi, self).list(request, *args, **kwargs).data,
        )


class PartDetailApi(APIView):
    @extend_schema(responses={200: PartSerializer})
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        return _catalog_answer(
            request,
            f"part-api:{slug}",
            lambda: PartSerializer(get_object_or_404(_families(), slug=slug)).data,
        )


def _catalog_answer(request: Request, name: str, build: Callable[[], Any]) -> HttpResponseBase:
    """The same answer for everyone until the catalog changes (catalog.cache). JSON is kept
    rendered: unpickling the serialised data cost more than the rest of the request."""
    renderer = request.accepted_renderer
    if not isinstance(renderer, JSONRenderer):  # the browsable API: rendered as usual
        return Response(catalog_cached(name, build))
    body = catalog_cached(f"{name}:json", lambda: renderer.render(build()))
    return HttpResponse(body, content_type=renderer.media_type)


class PartValidateApi(APIView):
    """Check a configuration of the part's current revision without ordering or building."""

    @extend_schema(request=ParametersInputSerializer, responses=ValidatedSerializer)
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
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many writes, or CATALOG_PREVIEW_MAX_IN_FLIGHT previews of "
                "yours are still queued or building.",
            ),
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


def preview_for_key(key: str) -> PartPreview:
    """A preview of an orderable part by its key, or 404 (production's DFM report API too)."""
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
        return Response(PreviewSerializer(preview_for_key(key)).data)


class PreviewFileApi(APIView):
    """A ready preview's GLB (the browser viewer's model), SVG drawing or STL mesh."""

    @extend_schema(
        operation_id="v1_previews_file_retrieve",
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(PREVIEW_FILES))],
        responses={(200, *PREVIEW_FILES.values()): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, key: str, kind: str) -> FileResponse:
        preview = preview_for_key(key)
        if kind not in PREVIEW_FILES or preview.status != PartPreview.Status.READY:
            raise Http404
        return file_response(
            getattr(preview, kind).open("rb"),
            content_type=PREVIEW_FILES[kind],
            filename=f"{preview.revision.family.slug}-{preview.key[:12]}.{kind}",
        )

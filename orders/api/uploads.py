"""The API of customers' own models (orders.uploads): upload a STEP or STL file (multipart),
list and read them with their state, and quote one in a material and quantity. An upload is
ordered like a catalog part, through POST /api/v1/orders/, with the `part` and `revision` its
detail gives.

Uploads are read only through CustomerUpload.objects.for_user: another organisation's upload
is a 404, as its orders are.
"""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.previews import TooManyPreviews
from microfactory.schema import ErrorSerializer
from orders.api.views import QuoteOutputSerializer
from orders.models import CustomerUpload
from orders.uploads import (
    NAME_MAX_CHARS,
    TooManyUploads,
    UploadRefused,
    UploadState,
    upload_create,
    upload_quote,
    upload_rescale,
    upload_state,
)

STATUSES = ["checking", "rejected", "ready"]


class UploadInputSerializer(serializers.Serializer[Any]):  # input only: no instance
    name = serializers.CharField(max_length=NAME_MAX_CHARS, help_text="what the part is")
    # Empty files too: orders.uploads refuses them with the same reason as the page does.
    model = serializers.FileField(
        allow_empty_file=True,
        help_text="the part's STEP (.step, .stp) or STL (.stl) file, in millimetres; at most "
        "MF_ORDER_UPLOAD_MAX_MB (32 MB) and MF_ORDER_UPLOAD_MAX_TRIANGLES (500,000)",
    )


class UploadOutputSerializer(serializers.ModelSerializer[CustomerUpload]):
    number = serializers.CharField()
    status = serializers.SerializerMethodField(
        help_text="checking: the file is being converted or checked in the sandbox; rejected: "
        "it cannot be made (`reason`); ready: quote it, and order it as `part` + `revision`"
    )
    reason = serializers.SerializerMethodField(help_text="why it was rejected")
    part = serializers.CharField(source="revision.family.slug", help_text="to order it")
    revision = serializers.IntegerField(source="revision.number", help_text="to order it")
    bbox_mm = serializers.SerializerMethodField(help_text="measured size, once ready")
    volume_mm3 = serializers.SerializerMethodField(help_text="measured volume, once ready")
    preview = serializers.SerializerMethodField(help_text="the build's key: /api/v1/previews/")
    promoted_to = serializers.SerializerMethodField(help_text="its catalog part, once promoted")

    class Meta:
        model = CustomerUpload
        fields = [
            "id",
            "number",
            "name",
            "file_name",
            "format",
            "size",
            "triangles",
            "created_at",
            "status",
            "reason",
            "part",
            "revision",
            "bbox_mm",
            "volume_mm3",
            "preview",
            "promoted_to",
            "scale",
        ]

    def _state(self, upload: CustomerUpload) -> UploadState:
        states: dict[int, UploadState] = self.context.setdefault("states", {})
        if upload.pk not in states:
            states[upload.pk] = upload_state(upload)
        return states[upload.pk]

    @extend_schema_field(serializers.ChoiceField(choices=STATUSES))
    def get_status(self, upload: CustomerUpload) -> str:
        return self._state(upload).status

    def get_reason(self, upload: CustomerUpload) -> str:
        return self._state(upload).reason

    @extend_schema_field(
        serializers.ListField(child=serializers.FloatField(), allow_null=True, min_length=3)
    )
    def get_bbox_mm(self, upload: CustomerUpload) -> list[float] | None:
        state = self._state(upload)
        return state.preview.bbox_mm if state.status == "ready" and state.preview else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_volume_mm3(self, upload: CustomerUpload) -> float | None:
        state = self._state(upload)
        return state.preview.volume_mm3 if state.status == "ready" and state.preview else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_preview(self, upload: CustomerUpload) -> str | None:
        preview = self._state(upload).preview
        return preview.key if preview is not None else None

    @extend_schema_field(serializers.SlugField(allow_null=True))
    def get_promoted_to(self, upload: CustomerUpload) -> str | None:
        promoted = upload.promoted_to
        return promoted.family.slug if promoted is not None else None


def _uploads(request: Request) -> Any:
    return CustomerUpload.objects.for_user(request.user).select_related(
        "revision__family", "promoted_to__family"
    )


class UploadsApi(GenericAPIView[CustomerUpload]):
    """The organisation's uploaded models, newest first; upload another (multipart)."""

    serializer_class = UploadOutputSerializer

    def get_queryset(self) -> Any:
        return _uploads(self.request)

    @extend_schema(responses=UploadOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(UploadOutputSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": UploadInputSerializer},
        responses={
            201: OpenApiResponse(
                UploadOutputSerializer,
                description="Kept, and its build queued: `status` is checking until a worker "
                "has converted or checked it.",
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="The file is refused (empty, too big, truncated, neither STEP nor "
                "STL, too many triangles) or a field is missing: `message` says why.",
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many writes, or CATALOG_PREVIEW_MAX_IN_FLIGHT builds of yours "
                "are still queued or building, or the organisation's daily upload limit.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        payload = UploadInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            upload = upload_create(
                user=request.user,
                name=payload.validated_data["name"],
                upload=payload.validated_data["model"],
            )
        except (TooManyPreviews, TooManyUploads) as refusal:  # as the previews API answers it
            return Response({"message": str(refusal)}, 429)
        return Response(UploadOutputSerializer(_uploads(request).get(pk=upload.pk)).data, 201)


class UploadDetailApi(APIView):
    """One upload and its state: checking, rejected (with the reason) or ready."""

    @extend_schema(responses=UploadOutputSerializer)
    def get(self, request: Request, upload_id: int) -> Response:
        upload = get_object_or_404(_uploads(request), pk=upload_id)
        return Response(UploadOutputSerializer(upload).data)


class UploadQuoteInputSerializer(serializers.Serializer[Any]):  # input only: no instance
    material = serializers.SlugField()
    quantity = serializers.IntegerField(min_value=1, required=False, default=1)


class UploadQuoteOutputSerializer(QuoteOutputSerializer):  # describes the response only
    dfm_report = serializers.DictField(
        allow_null=True,
        help_text="the full DFM report in this material: status (queued, checking: ask "
        "again; ready; failed), level (ok, warn, fail), summary, and unit_guess (null, or "
        "{unit, scale, extents_mm} when the file looks drawn in another unit than mm: accept "
        "it with POST /api/v1/uploads/{id}/scale/)",
    )


class UploadQuoteApi(APIView):
    """Price the upload as one order line, with its DFM notes and report. 409 while its file
    is being checked, or when it was rejected (the reason in `message`)."""

    @extend_schema(
        request=UploadQuoteInputSerializer,
        responses={
            200: UploadQuoteOutputSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="The file is still being checked (ask again shortly), or it was "
                "rejected: `message` says why.",
            ),
        },
    )
    def post(self, request: Request, upload_id: int) -> Response:
        upload = get_object_or_404(_uploads(request), pk=upload_id)
        payload = UploadQuoteInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        quoted = upload_quote(
            upload=upload,
            material=payload.validated_data["material"],
            quantity=payload.validated_data["quantity"],
        )
        if quoted.state.status == "checking":
            return Response({"message": "the file is still being checked; ask again"}, 409)
        if quoted.state.status == "rejected":
            return Response({"message": f"the file cannot be made: {quoted.state.reason}"}, 409)
        report = quoted.report
        guess = report.unit_guess if report is not None else None
        return Response(
            {
                "quote": quoted.quote.as_json(),
                "geometry": quoted.facts.geometry_basis,
                "firm": quoted.quote.firm,
                "dfm": [vars(note) for note in quoted.notes],
                "dfm_report": (
                    {
                        "status": report.status,
                        "level": report.level,
                        "summary": report.summary,
                        "unit_guess": guess,
                    }
                    if report is not None
                    else None
                ),
            }
        )


class UploadScaleInputSerializer(serializers.Serializer[Any]):  # input only: no instance
    unit = serializers.ChoiceField(
        choices=["mm", "inch", "m", "cm"],
        help_text="the unit the mesh was drawn in; mm reads the file as sent again",
    )


class UploadScaleApi(APIView):
    """Take the uploaded STL as drawn in another unit (the DFM report's unit_guess): the part
    becomes a scaled copy, built and checked anew in millimetres; the file as sent is kept."""

    @extend_schema(
        request=UploadScaleInputSerializer,
        responses={
            200: UploadOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="An unknown unit."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="A STEP file (it says its own unit), or an upload in the catalog "
                "already: `message` says why.",
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many writes, or CATALOG_PREVIEW_MAX_IN_FLIGHT builds of yours "
                "are still queued or building.",
            ),
        },
    )
    def post(self, request: Request, upload_id: int) -> Response:
        upload = get_object_or_404(_uploads(request), pk=upload_id)
        payload = UploadScaleInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            upload_rescale(upload=upload, user=request.user, unit=payload.validated_data["unit"])
        except TooManyPreviews as refusal:
            return Response({"message": str(refusal)}, 429)
        except UploadRefused as refusal:
            return Response({"message": str(refusal)}, 409)
        return Response(UploadOutputSerializer(_uploads(request).get(pk=upload.pk)).data)

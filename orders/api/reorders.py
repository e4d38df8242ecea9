"""Reorder through the API: see what reordering an order would place (GET: each line's
revision, values, what changed in the latest revision, what no longer validates), and place
it (POST: a new order through order_place, idempotent with an Idempotency-Key). Another
organisation's order is a 404."""

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.api.views import (
    BIGINT_MAX,
    _detail,
    _refuse_oversized,
    order_placed_responses,
)
from orders.models import Order
from orders.reorders import ReorderPlan, RevisionChoice, order_reorder, reorder_plan
from orders.services import NotAllowed

REVISIONS = [choice.value for choice in RevisionChoice]
REVISION_HELP = (
    "same: the revision and configuration ordered before; latest: the part's latest "
    "published revision, values carried over (renamed parameters too, new ones at their "
    "default)"
)


class ReorderInputSerializer(serializers.Serializer[Any]):
    lines = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        allow_empty=False,
        max_length=settings.ORDER_MAX_LINES,
        help_text="ids of the order's lines to reorder; omitted: every line",
    )
    revision = serializers.ChoiceField(
        choices=REVISIONS,
        default=RevisionChoice.SAME.value,
        help_text=REVISION_HELP,
    )
    reference = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="the new order's reference"
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ReorderQuerySerializer(serializers.Serializer[Any]):
    lines = serializers.RegexField(
        r"^\d{1,18}(,\d{1,18})*$",
        required=False,
        max_length=2000,
        help_text="ids of the order's lines, separated by commas; omitted: every line",
    )
    revision = serializers.ChoiceField(
        choices=REVISIONS, default=RevisionChoice.SAME.value, help_text=REVISION_HELP
    )


class ParameterChangeSerializer(serializers.Serializer[Any]):  # describes the response only
    kind = serializers.ChoiceField(
        choices=["added", "removed", "renamed", "range", "choices", "type", "unit"]
    )
    parameter = serializers.CharField(help_text="its name in the latest revision")
    text = serializers.CharField(help_text="the change in words")


class ReorderLineSerializer(serializers.Serializer[Any]):  # describes the response only
    source_line = serializers.IntegerField(source="source_line_id")
    part = serializers.CharField()
    part_name = serializers.CharField()
    source_revision = serializers.IntegerField()
    revision = serializers.IntegerField(
        allow_null=True, help_text="the revision it would be ordered at; null: none published"
    )
    parameters = serializers.DictField(child=serializers.JSONField())
    material = serializers.CharField()
    quantity = serializers.IntegerField()
    changes = ParameterChangeSerializer(many=True)
    problems = serializers.DictField(
        child=serializers.JSONField(),
        help_text="why the line cannot be ordered, by field (a parameter's name for a value "
        "that no longer validates); empty when it can",
    )


class ReorderPlanSerializer(serializers.Serializer[Any]):  # describes the response only
    source_order = serializers.IntegerField(source="source.pk")
    source_number = serializers.CharField(source="source.number")
    revision = serializers.ChoiceField(choices=REVISIONS)
    orderable = serializers.BooleanField(help_text="true when every line can be ordered")
    changed = serializers.BooleanField(help_text="true when a line's revision would change")
    lines = ReorderLineSerializer(many=True)


def _line_ids(raw: str | None) -> list[int] | None:
    return [int(pk) for pk in raw.split(",")] if raw else None


class OrderReorderApi(APIView):
    """Reorder an order (or some of its lines): the same revision and configuration, or the
    latest revision of each part. GET shows what would be placed, POST places it."""

    @extend_schema(
        parameters=[ReorderQuerySerializer],
        responses={200: ReorderPlanSerializer},
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = get_object_or_404(Order.objects.for_user(request.user), pk=order_id)
        query = ReorderQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        plan: ReorderPlan = reorder_plan(
            order=order,
            line_ids=_line_ids(query.validated_data.get("lines")),
            revision=query.validated_data["revision"],
        )
        return Response(ReorderPlanSerializer(plan).data)

    @extend_schema(
        request=ReorderInputSerializer,
        responses=order_placed_responses("The new order, placed now."),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Send the same key when retrying: the reorder is placed only once.",
            )
        ],
    )
    def post(self, request: Request, order_id: int) -> Response:
        order = get_object_or_404(Order.objects.for_user(request.user), pk=order_id)
        _refuse_oversized(request)
        payload = ReorderInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            placed, created = order_reorder(
                order=order,
                user=request.user,
                line_ids=data.get("lines"),
                revision=data["revision"],
                reference=data.get("reference", ""),
                note=data.get("note", ""),
                idempotency_key=request.headers.get("Idempotency-Key", "")[:255] or None,
            )
        except NotAllowed as refusal:
            raise PermissionDenied(str(refusal)) from refusal
        return _detail(request, placed, status=201 if created else 200)

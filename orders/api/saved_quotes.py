"""The saved-quote API: save lines as a quote (prices held until its validity date), list and
read the organisation's quotes, share one with the approvers, download its PDF, order it at
the held prices while valid, re-quote it at today's prices (orders.saved_quotes). Another
organisation's quote is a 404."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from microfactory.schema import ErrorSerializer
from orders.api.views import (
    LineInputSerializer,
    OrderOutputSerializer,
    _detail,
    _refuse_oversized,
)
from orders.models import Order, SavedQuote, SavedQuoteLine
from orders.quote_pdf import quote_pdf
from orders.saved_quotes import (
    QuoteExpired,
    QuoteOrdered,
    quote_order,
    quote_requote,
    quote_save,
    quote_share,
)
from orders.services import LineRequest, NotAllowed


class SavedQuoteInputSerializer(serializers.Serializer[Any]):
    lines = LineInputSerializer(many=True, allow_empty=False)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class QuoteOrderInputSerializer(serializers.Serializer[Any]):
    reference = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="the order's reference; omitted or blank: the quote's",
    )
    due_date = serializers.DateField(required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=Order.Priority.choices, required=False)
    delivery_site = serializers.SlugField(
        required=False,
        allow_blank=True,
        help_text="slug of the site the parts go to; omitted or blank: the organisation's "
        "default delivery site",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class SavedQuoteLineSerializer(serializers.ModelSerializer[SavedQuoteLine]):
    part = serializers.CharField(source="revision.family.slug")
    revision = serializers.IntegerField(source="revision.number")
    material = serializers.CharField(source="material.slug")
    quote = serializers.JSONField(
        source="quote_json", help_text="orders.quoting.Quote: prices as decimal strings"
    )

    class Meta:
        model = SavedQuoteLine
        fields = [
            "id",
            "part",
            "revision",
            "parameters",
            "material",
            "quantity",
            "unit_price",
            "price",
            "lead_time_s",
            "quote",
        ]


class SavedQuoteOutputSerializer(serializers.ModelSerializer[SavedQuote]):
    number = serializers.CharField(help_text="Q-<year>-<number>, e.g. Q-2026-000123")
    organisation = serializers.CharField(source="organisation.slug")
    team = serializers.CharField(source="team.slug", allow_null=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username")
    valid = serializers.SerializerMethodField(
        help_text="the prices are held today: it can be ordered (unless ordered already)"
    )
    shared_by = serializers.CharField(source="shared_by.username", allow_null=True, default=None)
    order = serializers.IntegerField(
        source="order_id", allow_null=True, read_only=True, help_text="the order placed from it"
    )
    lines = SavedQuoteLineSerializer(many=True)

    class Meta:
        model = SavedQuote
        fields = [
            "id",
            "number",
            "organisation",
            "team",
            "created_by",
            "created_at",
            "valid_until",
            "valid",
            "reference",
            "note",
            "total_price",
            "currency",
            "shared_at",
            "shared_by",
            "order",
            "lines",
        ]

    def get_valid(self, quote: SavedQuote) -> bool:
        return quote.is_valid_on(timezone.localdate())


def quotes_with_details(user: object) -> QuerySet[SavedQuote]:
    return (
        SavedQuote.objects.for_user(user)
        .select_related("organisation", "team", "created_by", "shared_by")
        .prefetch_related("lines__revision__family", "lines__material")
    )


def _quote_detail(request: Request, quote: SavedQuote, status: int = 200) -> Response:
    quote = quotes_with_details(request.user).get(pk=quote.pk)
    return Response(SavedQuoteOutputSerializer(quote).data, status=status)


def _no_body(request: Request) -> None:
    """These actions take no body; one sent anyway meets the same limits as everywhere (too
    large: 413, nested too deep: 400) before anything changes."""
    _refuse_oversized(request)
    request.data  # noqa: B018  (parsing is what checks it)


CONFLICT = OpenApiResponse(
    ErrorSerializer,
    description="The quote has expired (re-quote it) or was ordered already.",
)


class SavedQuotesApi(GenericAPIView[SavedQuote]):
    serializer_class = SavedQuoteOutputSerializer

    def get_queryset(self) -> QuerySet[SavedQuote]:
        return quotes_with_details(self.request.user).order_by("-created_at", "-pk")

    @extend_schema(responses=SavedQuoteOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SavedQuoteOutputSerializer(page, many=True).data)

    @extend_schema(
        request=SavedQuoteInputSerializer,
        responses={201: OpenApiResponse(SavedQuoteOutputSerializer, description="Saved now.")},
    )
    def post(self, request: Request) -> Response:
        """Price the lines now and hold the prices until the validity date."""
        _refuse_oversized(request)
        payload = SavedQuoteInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        quote = quote_save(
            user=request.user,
            lines=[LineRequest(**line) for line in data["lines"]],
            reference=data.get("reference", ""),
            note=data.get("note", ""),
        )
        return _quote_detail(request, quote, status=201)


class SavedQuoteDetailApi(APIView):
    @extend_schema(responses=SavedQuoteOutputSerializer)
    def get(self, request: Request, quote_id: int) -> Response:
        quote = get_object_or_404(quotes_with_details(request.user), pk=quote_id)
        return Response(SavedQuoteOutputSerializer(quote).data)


class SavedQuotePdfApi(APIView):
    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, quote_id: int) -> HttpResponse:
        """The quote as a PDF for purchasing: number, validity date, lines, prices, team."""
        quote = get_object_or_404(quotes_with_details(request.user), pk=quote_id)
        response = HttpResponse(quote_pdf(quote), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{quote.number}.pdf"'
        return response


class SavedQuoteShareApi(APIView):
    @extend_schema(request=None, responses={200: SavedQuoteOutputSerializer, 409: CONFLICT})
    def post(self, request: Request, quote_id: int) -> Response:
        """Share the quote with the organisation's approvers (their approvals page)."""
        quote = get_object_or_404(SavedQuote.objects.for_user(request.user), pk=quote_id)
        _no_body(request)
        try:
            quote_share(quote=quote, user=request.user)
        except QuoteOrdered as refusal:
            return Response({"message": str(refusal)}, status=409)
        return _quote_detail(request, quote)


class SavedQuoteRequoteApi(APIView):
    @extend_schema(
        request=None,
        responses={
            201: OpenApiResponse(
                SavedQuoteOutputSerializer, description="A new quote: today's prices."
            )
        },
    )
    def post(self, request: Request, quote_id: int) -> Response:
        """The quote's lines saved again as a new quote at today's prices."""
        quote = get_object_or_404(SavedQuote.objects.for_user(request.user), pk=quote_id)
        _no_body(request)
        fresh = quote_requote(quote=quote, user=request.user)
        return _quote_detail(request, fresh, status=201)


class SavedQuoteOrderApi(APIView):
    @extend_schema(
        request=QuoteOrderInputSerializer,
        responses={
            201: OpenApiResponse(
                OrderOutputSerializer, description="The order, its lines at the held prices."
            ),
            409: CONFLICT,
        },
    )
    def post(self, request: Request, quote_id: int) -> Response:
        """Order the quote at its held prices while it is valid (once)."""
        quote = get_object_or_404(SavedQuote.objects.for_user(request.user), pk=quote_id)
        _refuse_oversized(request)
        payload = QuoteOrderInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            order = quote_order(
                quote=quote,
                user=request.user,
                reference=data.get("reference", ""),
                due_date=data.get("due_date"),
                priority=data.get("priority", Order.Priority.NORMAL),
                delivery_site=data.get("delivery_site", ""),
                note=data.get("note", ""),
            )
        except (QuoteExpired, QuoteOrdered) as refusal:
            return Response({"message": str(refusal)}, status=409)
        except NotAllowed as refusal:
            raise PermissionDenied(str(refusal)) from refusal
        return _detail(request, order, status=201)

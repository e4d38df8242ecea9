"""The order API: quote a line; place an order (idempotently); list, read, cancel, approve
and reject your organisation's orders; read a job's status. Everything is scoped to the
caller's organisation: another organisation's order or job is a 404."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Model, Prefetch, QuerySet, prefetch_related_objects
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Process
from microfactory.errors import DomainError
from microfactory.limits import body_too_large
from microfactory.schema import ErrorSerializer
from orders import routes
from orders.delivery import SpeedOption, order_delivery_quote
from orders.models import WORK_ORDER_REF_MAX_LENGTH, Order, OrderEvent, OrderLine
from orders.quotes import dfm_notes, line_facts, route_quote
from orders.quoting import NoStock
from orders.search import OrderFilter
from orders.services import (
    LineRequest,
    NotAllowed,
    OrderInvalid,
    OrderRequest,
    line_check,
    order_approve,
    order_cancel,
    order_line_route_change,
    order_place,
    order_price_confirm,
    order_price_decline,
    order_reject,
)
from production import public
from production.public import JobEventSummary, JobSummary

# The largest value of a 64-bit integer column (the schema's bound for counts and durations).
BIGINT_MAX = 2**63 - 1


class LineInputSerializer(serializers.Serializer[Any]):  # input only: no instance
    part = serializers.SlugField(help_text="part family slug, e.g. shaft-collar")
    revision = serializers.IntegerField(required=False, min_value=1)
    parameters = serializers.DictField(child=serializers.JSONField(), allow_empty=True)
    material = serializers.SlugField()
    quantity = serializers.IntegerField(min_value=1)
    process = serializers.ChoiceField(
        choices=Process.choices,
        required=False,
        allow_blank=True,
        help_text="the process route you choose, with `material` of that process (the part's "
        "`processes` in the catalog API); omitted or blank: the route chooser picks the "
        "allowed process that is ready by `due_date` at the lowest cost, else the soonest",
    )


class OrderInputSerializer(serializers.Serializer[Any]):
    lines = LineInputSerializer(many=True, allow_empty=False)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100)
    due_date = serializers.DateField(required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=Order.Priority.choices, required=False)
    delivery_site = serializers.SlugField(
        required=False,
        allow_blank=True,
        help_text="slug of the site the parts go to; omitted or blank: the organisation's "
        "default delivery site",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    expedite = serializers.BooleanField(
        required=False,
        default=False,
        help_text="expedited: routed first as urgent, for the expedite fee (see the quote's "
        "`delivery`); false or omitted: standard. `due_date` is the needed-by date (omitted or "
        "null: as soon as possible); one the chosen speed cannot make is a 400 naming the "
        "earliest date",
    )
    asset = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=BIGINT_MAX,
        help_text="id of the organisation's asset the parts are for (GET /api/v1/assets/?tag=)",
    )
    work_order_ref = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=WORK_ORDER_REF_MAX_LENGTH,
        help_text="the team's work-order reference (their CMMS's)",
    )


class RouteInputSerializer(serializers.Serializer[Any]):
    process = serializers.ChoiceField(choices=Process.choices)
    material = serializers.SlugField(help_text="a material of that process offered for the part")


class ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


# Jobs are production's: they come as production.public.JobSummary values, described field by
# field as the Job model's serializer used to (the OpenAPI schema is unchanged).


class JobEventSerializer(serializers.Serializer[JobEventSummary]):
    step = serializers.CharField(max_length=30)
    from_status = serializers.CharField(max_length=20, help_text="empty for the first event")
    to_status = serializers.CharField(max_length=20)
    actor = serializers.CharField(max_length=150, help_text="user, worker host or 'system'")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX)
    message = serializers.CharField()


class ArtifactLinkSerializer(serializers.Serializer[Any]):  # describes the response only
    kind = serializers.ChoiceField(choices=public.ARTIFACT_KIND_CHOICES)
    sha256 = serializers.CharField()
    size = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX, help_text="bytes")
    url = serializers.URLField(help_text="the file, as an attachment")


class JobCopySerializer(serializers.Serializer[Any]):  # describes the response only
    copy = serializers.IntegerField(min_value=1, help_text="which of the job's copies")
    plate_id = serializers.IntegerField(min_value=1)
    plate = serializers.CharField(help_text="the plate's number, as on its traveler: P-000012")
    plate_status = serializers.ChoiceField(choices=public.PLATE_STATUS_CHOICES)
    number = serializers.IntegerField(min_value=1, help_text="the copy's number on the plate map")
    x_mm = serializers.FloatField(help_text="where it stands on the bed (front-left origin)")
    y_mm = serializers.FloatField()
    rotation_deg = serializers.FloatField(help_text="turned about Z")
    qc = serializers.ChoiceField(choices=public.COPY_QC_CHOICES)
    remake = serializers.CharField(
        allow_null=True, help_text="the job that remakes it, when it was scrapped"
    )
    measurements = serializers.DictField(
        child=serializers.FloatField(), help_text="measured at QC on this copy: check label: mm"
    )


class JobOutputSerializer(serializers.Serializer[JobSummary]):
    id = serializers.IntegerField(source="pk", read_only=True)
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=public.JOB_STATUS_CHOICES)
    reason = serializers.CharField(help_text="why the job was rejected or failed")
    quantity = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX)
    machine = serializers.CharField(
        source="machine_slug", read_only=True, allow_null=True, help_text="slug, once routed"
    )
    site = serializers.CharField(
        read_only=True, help_text="where it is made (its machine's site); empty until routed"
    )
    route_reason = serializers.CharField(
        read_only=True,
        help_text="why it is made at that site: arrival at the delivery site, transit, due date",
    )
    progress = serializers.FloatField(allow_null=True, help_text="percent done on the machine")
    dfm_report = serializers.JSONField(allow_null=True)
    toolpath_meta = serializers.JSONField(allow_null=True)
    events = JobEventSerializer(many=True)
    artifacts = serializers.SerializerMethodField()
    copies = JobCopySerializer(
        many=True,
        read_only=True,
        help_text="the plate and place of each copy, and its QC (#13); empty for a job made "
        "as one part",
    )

    @extend_schema_field(ArtifactLinkSerializer(many=True))
    def get_artifacts(self, job: JobSummary) -> list[dict[str, Any]]:
        request = self.context["request"]
        return [
            {
                "kind": link.kind,
                "sha256": link.sha256,
                "size": link.size,
                "url": request.build_absolute_uri(
                    reverse("api:job-artifact", args=[job.pk, link.kind])
                ),
            }
            for link in job.artifacts
        ]


class OrderEventSerializer(serializers.ModelSerializer[OrderEvent]):
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = OrderEvent
        # source_order: on a reorder's first event, the id of the order it repeats.
        fields = ["line", "from_status", "to_status", "actor", "at", "reason", "source_order"]


class RouteOptionSerializer(serializers.Serializer[Any]):  # describes the response only
    process = serializers.ChoiceField(choices=Process.choices)
    material = serializers.CharField(help_text="material slug")
    material_name = serializers.CharField()
    route = serializers.CharField(help_text="'milled in 6061 aluminium'")
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    machine_time_s = serializers.FloatField(help_text="per part")
    time_basis = serializers.ChoiceField(
        choices=["toolpath", "estimate"],
        help_text="from a planned program of this configuration, or estimated",
    )
    stock_mm = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="the plate or sheet cut (x, y, thickness); null for printing",
    )
    lead_time_s = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX, allow_null=True)
    ready_at = serializers.DateTimeField(allow_null=True, help_text="null: no machine now")
    meets_due = serializers.BooleanField(help_text="ready by the needed-by date")
    chosen = serializers.BooleanField()


class LineOutputSerializer(serializers.ModelSerializer[OrderLine]):
    part = serializers.CharField(source="revision.family.slug")
    revision = serializers.IntegerField(source="revision.number")
    material = serializers.CharField(source="material.slug")
    route_options = serializers.SerializerMethodField(
        help_text="every route quoted when it was chosen; empty when the part has one process"
    )
    jobs = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = [
            "id",
            "part",
            "revision",
            "parameters",
            "material",
            "quantity",
            "status",
            "reason",
            "unit_price",
            "price",
            "lead_time_s",
            "quote",
            "price_check",
            "quoted_price",
            "built_quote",
            "price_checked_at",
            "process",
            "route_reason",
            "route_chosen_by",
            "route_options",
            "jobs",
        ]
        extra_kwargs = {
            "process": {"help_text": "the process the line is made by (its route)"},
            "route_reason": {
                "help_text": "why this route, against the others: 'milled in 6061: 2 h sooner "
                "and stiffer; printed in PETG would be 4.10 EUR cheaper'; empty when the part "
                "has one process"
            },
            "route_chosen_by": {"help_text": "chooser, requester, or empty (one process only)"},
        }

    @extend_schema_field(RouteOptionSerializer(many=True))
    def get_route_options(self, line: OrderLine) -> Any:
        return line.route_options or []

    @extend_schema_field(JobOutputSerializer(many=True))
    def get_jobs(self, line: OrderLine) -> Any:
        # The order's jobs by line, read once per response (production.public.job_summaries).
        jobs = self.context["jobs_by_line"].get(line.pk, [])
        return JobOutputSerializer(jobs, many=True, context=self.context).data


class OrderOutputSerializer(serializers.ModelSerializer[Order]):
    number = serializers.CharField()
    organisation = serializers.CharField(source="organisation.slug")
    team = serializers.CharField(source="team.slug", allow_null=True, read_only=True)
    placed_by = serializers.CharField(source="placed_by.username")
    delivery_site: serializers.SlugRelatedField[Model] = serializers.SlugRelatedField(
        slug_field="slug",
        read_only=True,
        allow_null=True,
        help_text="the site the parts go to (named at ordering, else the organisation's default)",
    )
    lines = LineOutputSerializer(many=True)
    events = serializers.SerializerMethodField()
    price_decided_by = serializers.CharField(
        source="price_decided_by.username", allow_null=True, default=None
    )
    asset_tag = serializers.CharField(
        source="asset.tag", allow_null=True, default=None, help_text="the asset's tag"
    )
    downtime_stake = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        read_only=True,
        help_text="EUR at stake when placed for a critical asset that was down: its downtime "
        "cost per hour x the quoted lead time",
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "organisation",
            "team",
            "placed_by",
            "status",
            "reason",
            "reference",
            "due_date",
            "priority",
            "delivery_site",
            "note",
            "total_price",
            "currency",
            "placed_at",
            "expedite",
            "expedite_fee",
            "promised_at",
            "price_decided_by",
            "price_decided_at",
            "asset",
            "asset_tag",
            "work_order_ref",
            "downtime_stake",
            "lines",
            "events",
        ]

    @extend_schema_field(OrderEventSerializer(many=True))
    def get_events(self, order: Order) -> list[dict[str, Any]]:
        # many=True makes a ListSerializer, whose data is a ReturnList (a list of dicts); the
        # stubs type the call as the OrderEventSerializer itself, with a ReturnDict.
        return OrderEventSerializer(order.events.all(), many=True).data  # type: ignore[return-value]


class OrderSummarySerializer(serializers.ModelSerializer[Order]):
    number = serializers.CharField()

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "reference",
            "due_date",
            "priority",
            "total_price",
            "currency",
            "placed_at",
            "expedite",
            "promised_at",
            "asset",
            "work_order_ref",
        ]


class QuoteInputSerializer(LineInputSerializer):
    pass


class DfmNoteSerializer(serializers.Serializer[Any]):  # describes the response only
    level = serializers.ChoiceField(choices=["ok", "warn", "fail"])
    message = serializers.CharField()


class SpeedOptionSerializer(serializers.Serializer[Any]):  # describes the response only
    fee = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="0 for standard")
    total = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="the line's total plus the fee"
    )
    lead_time_s = serializers.IntegerField(
        min_value=0, max_value=BIGINT_MAX, allow_null=True, help_text="null: no machine now"
    )
    promised_at = serializers.DateTimeField(
        allow_null=True,
        help_text="ready by (at the delivery site): the live queue simulated with this order "
        "added, every job as slow as `confidence` of past jobs ran against their estimates",
    )
    expected_at = serializers.DateTimeField(
        allow_null=True, help_text="the same simulation at the median past run time"
    )
    confidence = serializers.FloatField(
        allow_null=True, help_text="0..1: the share of past jobs the promise allows for"
    )


class DeliverySerializer(serializers.Serializer[Any]):  # describes the response only
    currency = serializers.CharField()
    standard = SpeedOptionSerializer()
    expedited = SpeedOptionSerializer()


def _speed(option: SpeedOption) -> dict[str, Any]:
    return {
        "fee": str(option.fee),
        "total": str(option.total),
        "lead_time_s": option.lead_time_s,
        "promised_at": option.promised_at.isoformat() if option.promised_at else None,
        "expected_at": option.expected_at.isoformat() if option.expected_at else None,
        "confidence": option.confidence,
    }


class QuoteOutputSerializer(serializers.Serializer[Any]):  # describes the response only
    quote = serializers.DictField(help_text="orders.quoting.Quote: prices as decimal strings")
    geometry = serializers.ChoiceField(
        choices=["preview", "job", "estimator", "envelope"],
        help_text="measured on built geometry of this configuration (a preview, or a job "
        "that built it before: the quote is firm), or estimated (the revision's fitted "
        "estimator, or the envelope guess while it has none): checked again once built",
    )
    firm = serializers.BooleanField(help_text="priced on built geometry of this configuration")
    dfm = DfmNoteSerializer(many=True)
    delivery = DeliverySerializer(
        help_text="what each speed costs and when it is promised, were it ordered now"
    )
    route_reason = serializers.CharField(
        help_text="the route an order placed now (no needed-by date) would take, and why; "
        "empty when the part has one process"
    )
    routes = RouteOptionSerializer(
        many=True, help_text="every process route quoted; empty when the part has one process"
    )


# What an order's answer shows of its lines and events (orders_with_details, _placed).
DETAILS = (
    "events",
    Prefetch("lines", OrderLine.objects.select_related("revision__family", "material")),
)


def orders_with_details(user: object) -> QuerySet[Order]:
    return (
        Order.objects.for_user(user)
        .select_related("organisation", "team", "placed_by", "delivery_site", "asset")
        .prefetch_related(*DETAILS)
    )


def _order_output(request: Request, order: Order) -> Any:
    jobs_by_line = public.job_summaries(order_ids=[order.pk], details=True)
    context = {"request": request, "jobs_by_line": jobs_by_line}
    return OrderOutputSerializer(order, context=context).data


def _detail(request: Request, order: Order, status: int = 200) -> Response:
    order = orders_with_details(request.user).get(pk=order.pk)
    return Response(_order_output(request, order), status=status)


def _placed(request: Request, order: Order, *, created: bool) -> Response:
    """The answer to placing an order, from the order in hand (order_place made it with its
    organisation, team, placer and asset, and moved it to where it is): only its lines and
    events are read, not the whole order again."""
    prefetch_related_objects([order], *DETAILS)
    return Response(_order_output(request, order), status=201 if created else 200)


def _refuse_oversized(request: Request) -> None:
    """Refuse a body whose declared length is past DATA_UPLOAD_MAX_MEMORY_SIZE before reading
    any of it (the JSON parser, microfactory.limits, also stops reading at the limit)."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if not length.isdigit() or (limit is not None and int(length) > limit):
        raise body_too_large(limit or 0)


def order_placed_responses(placed: str) -> dict[int, OpenApiResponse]:
    """The answers of an operation that places an order under an Idempotency-Key."""
    return {
        201: OpenApiResponse(OrderOutputSerializer, description=placed),
        200: OpenApiResponse(
            OrderOutputSerializer,
            description="The order placed before with the same Idempotency-Key.",
        ),
        409: OpenApiResponse(
            ErrorSerializer,
            description="The Idempotency-Key was used before for a different order.",
        ),
    }


class OrdersApi(GenericAPIView[Order]):
    serializer_class = OrderSummarySerializer

    # Search: orders.search (the orders page uses the same filters); a bad parameter is a 400.
    filter_backends = [DjangoFilterBackend]
    filterset_class = OrderFilter

    def get_queryset(self) -> QuerySet[Order]:
        return Order.objects.for_user(self.request.user).order_by("-placed_at", "-pk")

    @extend_schema(responses=OrderSummarySerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(OrderSummarySerializer(page, many=True).data)

    @extend_schema(
        request=OrderInputSerializer,
        responses=order_placed_responses("The order, placed now."),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Send the same key when retrying: the order is placed only once "
                "(keys expire after ORDER_IDEMPOTENCY_KEY_TTL_H hours, 24 by default).",
            )
        ],
    )
    def post(self, request: Request) -> Response:
        _refuse_oversized(request)
        payload = OrderInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        order, created = order_place(
            user=request.user,
            request=OrderRequest(
                lines=[LineRequest(**line) for line in data["lines"]],
                reference=data.get("reference", ""),
                due_date=data.get("due_date"),
                priority=data.get("priority", Order.Priority.NORMAL),
                delivery_site=data.get("delivery_site", ""),
                note=data.get("note", ""),
                expedite=data.get("expedite", False),
                idempotency_key=request.headers.get("Idempotency-Key", "")[:255] or None,
                asset=data.get("asset"),
                work_order_ref=data.get("work_order_ref", ""),
            ),
        )
        return _placed(request, order, created=created)


class OrderDetailApi(APIView):
    @extend_schema(responses=OrderOutputSerializer)
    def get(self, request: Request, order_id: int) -> Response:
        order = get_object_or_404(orders_with_details(request.user), pk=order_id)
        return Response(_order_output(request, order))


class _OrderActionApi(APIView):
    """POST to an order: find it in the caller's organisation (404 otherwise), call one
    service; a role that may not is a 403, an order in the wrong state a 409.

    Each subclass defines `act`: the one service its endpoint calls."""

    act: Callable[[Request, Order, str], Order]

    @extend_schema(
        request=ReasonSerializer,
        responses={
            200: OrderOutputSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The order is not in a state that allows this."
            ),
        },
    )
    def post(self, request: Request, order_id: int) -> Response:
        order = get_object_or_404(Order.objects.for_user(request.user), pk=order_id)
        _refuse_oversized(request)
        payload = ReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            order = self.act(request, order, payload.validated_data.get("reason", ""))
        except NotAllowed as refusal:
            raise PermissionDenied(str(refusal)) from refusal
        except OrderInvalid:
            raise
        except DomainError as refusal:
            return Response({"message": str(refusal)}, status=409)
        return _detail(request, order)


class OrderCancelApi(_OrderActionApi):
    """Cancel an order and its jobs while no machine has started any of them."""

    def act(self, request: Request, order: Order, reason: str) -> Order:
        return order_cancel(order=order, user=request.user, reason=reason)


class OrderApproveApi(_OrderActionApi):
    """Approve an order waiting for approval (approvers and managers): its jobs start."""

    def act(self, request: Request, order: Order, reason: str) -> Order:
        return order_approve(order=order, user=request.user)


class OrderRejectApi(_OrderActionApi):
    """Reject an order waiting for approval, with a reason (approvers and managers)."""

    def act(self, request: Request, order: Order, reason: str) -> Order:
        return order_reject(order=order, user=request.user, reason=reason)


class OrderPriceConfirmApi(_OrderActionApi):
    """Accept the new price of the lines whose built part priced more than the tolerance above
    their estimated quote (the requester, an approver or a manager; above the team's approval
    threshold, an approver or a manager other than the requester): production goes on."""

    def act(self, request: Request, order: Order, reason: str) -> Order:
        return order_price_confirm(order=order, user=request.user)


class OrderPriceDeclineApi(_OrderActionApi):
    """Refuse the new price: the lines waiting for it are cancelled with their jobs (none
    has started); the order goes on with its other lines, or ends cancelled."""

    def act(self, request: Request, order: Order, reason: str) -> Order:
        return order_price_decline(order=order, user=request.user, reason=reason)


class OrderLineRouteApi(APIView):
    """Make a line by another of its allowed process routes (process + material) while no
    machine has started it: its price, ready time and reason follow (the requester, an
    approver or a manager)."""

    @extend_schema(
        request=RouteInputSerializer,
        responses={
            200: OrderOutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="A process the part is not made by, a material not of that "
                "process, a route no machine can make now or not ready by the needed-by date.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The line can no longer change (started, ended, or a price "
                "waiting), or the new total needs an approval.",
            ),
        },
    )
    def post(self, request: Request, order_id: int, line_id: int) -> Response:
        order = get_object_or_404(Order.objects.for_user(request.user), pk=order_id)
        line = get_object_or_404(OrderLine.objects.filter(order=order), pk=line_id)
        _refuse_oversized(request)
        payload = RouteInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            order = order_line_route_change(
                line=line,
                user=request.user,
                process=payload.validated_data["process"],
                material=payload.validated_data["material"],
            )
        except NotAllowed as refusal:
            raise PermissionDenied(str(refusal)) from refusal
        except OrderInvalid:
            raise
        except DomainError as refusal:
            return Response({"message": str(refusal)}, status=409)
        return _detail(request, order)


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = public.job_summary(job_id=job_id, orders=Order.objects.for_user(request.user))
        if job is None:
            raise Http404
        return Response(JobOutputSerializer(job, context={"request": request}).data)


class QuoteApi(APIView):
    """Price one line without ordering it: the same quote an order would store, and the DFM
    notes (measured on the built preview when there is one, else estimated)."""

    @extend_schema(request=QuoteInputSerializer, responses=QuoteOutputSerializer)
    def post(self, request: Request) -> Response:
        _refuse_oversized(request)
        payload = QuoteInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        line = line_check(LineRequest(**payload.validated_data))
        now = timezone.now()
        facts = line_facts(**line, now=now)
        try:
            quote = route_quote(facts)
        except NoStock as refusal:
            raise OrderInvalid({"material": [str(refusal)]}) from refusal
        delivery = order_delivery_quote([(facts, quote)], now=now)
        # The other routes an order would weigh (orders.routes), as soon as possible.
        found = routes.line_routes(now=now, **line)
        choice = routes.decide(found.options, deadline=None) if found.options else None
        return Response(
            {
                "quote": quote.as_json(),
                "route_reason": choice.reason if choice is not None else "",
                "routes": choice.options_json() if choice is not None and choice.chosen_by else [],
                "geometry": facts.geometry_basis,
                "firm": quote.firm,
                "dfm": [vars(note) for note in dfm_notes(facts)],
                "delivery": {
                    "currency": delivery.currency,
                    "standard": _speed(delivery.standard),
                    "expedited": _speed(delivery.expedited),
                },
            }
        )

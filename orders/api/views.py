"""The order API: place an order (idempotently), list and read your organisation's orders."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Order, OrderLine
from orders.services import LineRequest, OrderRequest, order_place
from production.models import Job, JobArtifact, JobEvent


class LineInputSerializer(serializers.Serializer):
    part = serializers.SlugField(help_text="part family slug, e.g. shaft-collar")
    revision = serializers.IntegerField(required=False, min_value=1)
    parameters = serializers.DictField(child=serializers.JSONField(), allow_empty=True)
    material = serializers.SlugField()
    quantity = serializers.IntegerField(min_value=1)


class OrderInputSerializer(serializers.Serializer):
    lines = LineInputSerializer(many=True, allow_empty=False)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=100)
    due_date = serializers.DateField(required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=Order.Priority.choices, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["step", "from_status", "to_status", "actor", "started_at", "finished_at",
                  "duration_ms", "message"]


class JobOutputSerializer(serializers.ModelSerializer):
    number = serializers.CharField()
    machine = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    events = JobEventSerializer(many=True)
    artifacts = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "number", "status", "reason", "quantity", "machine", "dfm_report",
                  "toolpath_meta", "events", "artifacts"]

    def get_artifacts(self, job: Job) -> list[dict]:
        request = self.context["request"]
        return [
            {
                "kind": link.kind,
                "sha256": link.artifact.sha256,
                "size": link.artifact.size,
                "url": request.build_absolute_uri(
                    reverse("api:job-artifact", args=[job.pk, link.kind])
                ),
            }
            for link in job.job_artifacts.all()
        ]


class LineOutputSerializer(serializers.ModelSerializer):
    part = serializers.CharField(source="revision.family.slug")
    revision = serializers.IntegerField(source="revision.number")
    material = serializers.CharField(source="material.slug")
    jobs = JobOutputSerializer(many=True)

    class Meta:
        model = OrderLine
        fields = ["id", "part", "revision", "parameters", "material", "quantity", "jobs"]


class OrderOutputSerializer(serializers.ModelSerializer):
    number = serializers.CharField()
    organisation = serializers.CharField(source="organisation.slug")
    lines = LineOutputSerializer(many=True)

    class Meta:
        model = Order
        fields = ["id", "number", "organisation", "reference", "due_date", "priority", "note",
                  "placed_at", "lines"]


class OrderSummarySerializer(serializers.ModelSerializer):
    number = serializers.CharField()

    class Meta:
        model = Order
        fields = ["id", "number", "reference", "due_date", "priority", "placed_at"]


def orders_with_details(user: object):
    jobs = Job.objects.select_related("machine").prefetch_related(
        "events", Prefetch("job_artifacts", JobArtifact.objects.select_related("artifact"))
    )
    return Order.objects.for_user(user).select_related("organisation").prefetch_related(
        Prefetch(
            "lines",
            OrderLine.objects.select_related("revision__family", "material").prefetch_related(
                Prefetch("jobs", jobs)
            ),
        )
    )


class OrdersApi(GenericAPIView):
    serializer_class = OrderSummarySerializer

    def get_queryset(self):
        return Order.objects.for_user(self.request.user)

    @extend_schema(responses=OrderSummarySerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(OrderSummarySerializer(page, many=True).data)

    @extend_schema(
        request=OrderInputSerializer,
        responses={201: OrderOutputSerializer, 200: OrderOutputSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Send the same key when retrying: the order is placed only once.",
            )
        ],
    )
    def post(self, request: Request) -> Response:
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
                note=data.get("note", ""),
                idempotency_key=request.headers.get("Idempotency-Key", "")[:255] or None,
            ),
        )
        order = orders_with_details(request.user).get(pk=order.pk)
        body = OrderOutputSerializer(order, context={"request": request}).data
        return Response(body, status=201 if created else 200)


class OrderDetailApi(APIView):
    @extend_schema(responses=OrderOutputSerializer)
    def get(self, request: Request, order_id: int) -> Response:
        order = get_object_or_404(orders_with_details(request.user), pk=order_id)
        return Response(OrderOutputSerializer(order, context={"request": request}).data)

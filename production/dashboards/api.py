"""The dashboard's figures in the API, for the factory's managers and staff:
GET /api/v1/dashboard/ (all of them) and /api/v1/dashboard/<figure>/ (one). Parameters as on
the page: days=N or from=YYYY-MM-DD&to=YYYY-MM-DD, and site=SLUG. Anyone else gets 403; a bad
period 400; a site the user does not manage 404."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from production import tenancy
from production.dashboards import figures
from production.dashboards.access import dashboard_request
from production.dashboards.period import Period

PARAMETERS = [
    OpenApiParameter("days", OpenApiTypes.INT, description="the last N days, today included"),
    OpenApiParameter("from", OpenApiTypes.DATE, description="first day (with `to`)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="last day, included"),
    OpenApiParameter("site", OpenApiTypes.STR, description="one of your sites, by its slug"),
]


class ManagesAFloor(BasePermission):
    """Staff, or a manager of a factory that operates a site; else 403."""

    message = "the dashboard is for the factory's managers"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return tenancy.is_manager(request.user)


class PeriodSerializer(serializers.Serializer[Period]):
    first_day = serializers.DateField()
    last_day = serializers.DateField(help_text="included")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="the period's end, or now if sooner")
    zone = serializers.CharField(
        help_text="the time zone its days are counted in: the sites' if they share one, "
        "else the factory's"
    )


class StageSerializer(serializers.Serializer[figures.StageRow]):
    status = serializers.CharField()
    # A field named like Field.label (the stubs type that attribute, DRF takes it as a field).
    label = serializers.CharField()  # type: ignore[assignment]
    waiting = serializers.BooleanField(help_text="a stage jobs wait in (all but running)")
    jobs_now = serializers.IntegerField(help_text="work in progress: jobs in it now")
    waiting_now_s = serializers.FloatField(help_text="time the jobs in it now have spent there")
    left = serializers.IntegerField(help_text="jobs that left the stage in the period")
    waited_s = serializers.FloatField(help_text="time those jobs spent in it, added up")
    mean_wait_s = serializers.FloatField(allow_null=True)
    bottleneck = serializers.BooleanField(help_text="the waiting stage with the most waiting")


class OeeSerializer(serializers.Serializer[figures.OeeRow]):
    machine = serializers.CharField(help_text='its name; "all machines" for the floor\'s total')
    machine_id = serializers.IntegerField(allow_null=True)
    day = serializers.DateField(
        allow_null=True, help_text="the day, the Monday of the week, or null for the period"
    )
    planned_s = serializers.FloatField(help_text="open time of the machine's site")
    run_s = serializers.FloatField()
    down_s = serializers.FloatField()
    material_s = serializers.FloatField(help_text="waiting for material")
    no_work_s = serializers.FloatField(help_text="idle with an empty queue")
    waiting_s = serializers.FloatField(help_text="idle with work queued")
    paused_s = serializers.FloatField(help_text="paused by the operator")
    failed_s = serializers.FloatField(help_text="running time of prints that failed")
    utilisation = serializers.FloatField(allow_null=True, min_value=0)
    availability = serializers.FloatField(allow_null=True, min_value=0)
    performance = serializers.FloatField(allow_null=True, min_value=0)
    quality = serializers.FloatField(allow_null=True, min_value=0)
    oee = serializers.FloatField(allow_null=True, min_value=0)
    estimated_s = serializers.FloatField()
    actual_s = serializers.FloatField()
    passed = serializers.IntegerField()
    scrapped = serializers.IntegerField()


class OeeFiguresSerializer(serializers.Serializer[figures.Oee]):
    machines = OeeSerializer(many=True, help_text="per machine over the period, then the total")
    daily = OeeSerializer(many=True)
    weekly = OeeSerializer(many=True)


class ScrapSerializer(serializers.Serializer[figures.ScrapRow]):
    day = serializers.DateField()
    by = serializers.ChoiceField(choices=list(figures.SCRAP_DIMENSIONS))
    name = serializers.CharField()
    passed = serializers.IntegerField()
    scrapped = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, min_value=0)


class LeadTimesSerializer(serializers.Serializer[figures.LeadTimes]):
    jobs = serializers.IntegerField(help_text="jobs that passed QC in the period")
    median_s = serializers.FloatField(allow_null=True, help_text="order placed -> QC passed")
    p90_s = serializers.FloatField(allow_null=True)
    judged = serializers.IntegerField(help_text="with a promised time or a needed-by date")
    on_time = serializers.IntegerField()
    on_time_rate = serializers.FloatField(allow_null=True, min_value=0)


class PromisesSerializer(serializers.Serializer[figures.PromiseRow]):
    orders = serializers.IntegerField(
        help_text="orders with a promised time whose last job passed QC in the period"
    )
    kept = serializers.IntegerField(help_text="ready by the promised time")
    kept_share = serializers.FloatField(allow_null=True, min_value=0)
    median_late_s = serializers.FloatField(allow_null=True, help_text="of the late ones")
    median_error_s = serializers.FloatField(
        allow_null=True, help_text="ready - promised, signed (negative: early)"
    )


class ThroughputSerializer(serializers.Serializer[figures.ThroughputRow]):
    day = serializers.DateField()
    jobs = serializers.IntegerField()
    parts = serializers.IntegerField()


class DashboardSerializer(serializers.Serializer[figures.Dashboard]):
    period = PeriodSerializer()
    stages = StageSerializer(many=True)
    oee = OeeFiguresSerializer()
    scrap = ScrapSerializer(many=True)
    lead_times = LeadTimesSerializer()
    promises = PromisesSerializer()
    throughput = ThroughputSerializer(many=True)


class _Figure(APIView, ABC):
    """One dashboard figure's endpoint: each subclass says which figure it serialises."""

    permission_classes = [ManagesAFloor]
    query_names_an_object = True  # ?site= of a floor the user does not manage: 404 (schema)

    @abstractmethod
    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any: ...

    def read(self, request: Request) -> Response:
        now = timezone.now()
        read = dashboard_request(request.user, request.query_params, now=now)
        return Response(self.figure(read.scope, read.period, now))


_Get = TypeVar("_Get", bound=Callable[..., Response])


def _op(operation_id: str, response: Any) -> Callable[[_Get], _Get]:
    return extend_schema(operation_id=operation_id, parameters=PARAMETERS, responses=response)


class DashboardApi(_Figure):
    @_op("dashboard", DashboardSerializer)
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        return DashboardSerializer(figures.dashboard(scope, period, now=now)).data


class DashboardStagesApi(_Figure):
    @_op("dashboard_stages", StageSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        rows: Any = figures.stages(scope, period, now=now)
        return StageSerializer(rows, many=True).data


class DashboardOeeApi(_Figure):
    @_op("dashboard_oee", OeeFiguresSerializer)
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        return OeeFiguresSerializer(figures.oee(scope, period)).data


class DashboardScrapApi(_Figure):
    @_op("dashboard_scrap", ScrapSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        rows: Any = figures.scrap_trend(scope, period, now=now)
        return ScrapSerializer(rows, many=True).data


class DashboardLeadTimesApi(_Figure):
    @_op("dashboard_lead_times", LeadTimesSerializer)
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        return LeadTimesSerializer(figures.lead_times(scope, period)).data


class DashboardPromisesApi(_Figure):
    @_op("dashboard_promises", PromisesSerializer)
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        return PromisesSerializer(figures.promises(scope, period)).data


class DashboardThroughputApi(_Figure):
    @_op("dashboard_throughput", ThroughputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.read(request)

    def figure(self, scope: figures.Scope, period: Period, now: datetime) -> Any:
        rows: Any = figures.throughput(scope, period)
        return ThroughputSerializer(rows, many=True).data

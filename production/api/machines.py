"""Machines over HTTP: staff, and the operators and managers of a factory for its own sites'
machines (production.tenancy), list and read them; staff and the factory's managers change
them (the connector settings, which make the server connect somewhere, staff only). A machine
of another factory answers 404. A machine (or its agent) reports telemetry with its own
token, which can touch only that machine.

Connector secrets never leave the server: the API shows whether a machine has an API key
variable and a telemetry token, never their values or names.
"""

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from catalog.models import Process
from microfactory.limits import ID_MAX
from microfactory.schema import ErrorSerializer
from microfactory.throttles import FailOpen, rate_for
from orders.models import Membership
from production import machines, tenancy
from production.models import Job, Machine, MachineTelemetry

REPORTED_STATES = ["idle", "busy", "paused", "error", "offline"]  # maintenance is staff's call
MAX_TEMPERATURES = 16
# What a machine says of the job or plate it runs (the pollers' words: production.connectors).
JOB_STATES = ["printing", "paused", "complete", "cancelled", "error"]


def without_credentials(url: str) -> str:
    """The URL without any user:password@ part."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class MachineSerializer(serializers.Serializer[Machine]):
    slug = serializers.CharField()
    name = serializers.CharField()
    site = serializers.CharField(source="site.name")
    model = serializers.CharField(help_text="maker and model; may be empty")
    process = serializers.ChoiceField(choices=Process.choices)
    build_volume_mm = serializers.ListField(
        child=serializers.FloatField(), min_length=3, max_length=3, help_text="x, y, z"
    )
    nozzle_mm = serializers.FloatField()
    flavour = serializers.ChoiceField(choices=Machine.Flavour.choices)
    toolpath_engine = serializers.ChoiceField(choices=Machine.ToolpathEngine.choices)
    materials_loaded = serializers.SerializerMethodField()
    materials_loadable = serializers.SerializerMethodField()
    hourly_rate = serializers.DecimalField(
        max_digits=8,
        decimal_places=2,
        allow_null=True,
        help_text="null unless you manage the machine's factory (operators see no prices)",
    )
    power_w = serializers.IntegerField(
        allow_null=True, help_text="watts while running; null: the process's default"
    )
    connector = serializers.ChoiceField(choices=Machine.Connector.choices)
    connector_url = serializers.SerializerMethodField(help_text="without any user:password@")
    has_api_key = serializers.SerializerMethodField()
    has_token = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=Machine.State.choices)
    state_changed_at = serializers.DateTimeField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True, help_text="its last telemetry")
    progress = serializers.FloatField(allow_null=True, help_text="percent of the current job")
    temperatures = serializers.DictField(child=serializers.FloatField(), help_text="sensor: °C")
    error_text = serializers.CharField()
    current_job = serializers.SerializerMethodField()
    queue_limit = serializers.IntegerField()
    queued_jobs = serializers.IntegerField()

    def get_materials_loaded(self, machine: Machine) -> list[str]:
        return sorted(m.slug for m in machine.materials_loaded.all())

    def get_materials_loadable(self, machine: Machine) -> list[str]:
        return sorted(m.slug for m in machine.materials_loadable.all())

    def get_connector_url(self, machine: Machine) -> str:
        return without_credentials(machine.connector_url)

    def get_has_api_key(self, machine: Machine) -> bool:
        return bool(machine.connector_secret_env)

    def get_has_token(self, machine: Machine) -> bool:
        return bool(machine.token_hash)

    def get_current_job(self, machine: Machine) -> str | None:
        return f"J-{machine.current_job_id:06d}" if machine.current_job_id else None

    def to_representation(self, machine: Machine) -> dict[str, Any]:
        shown = super().to_representation(machine)
        if machine.pk not in self.context.get("priced", ()):
            shown["hourly_rate"] = None
        return dict(shown)


class TelemetrySerializer(serializers.Serializer[MachineTelemetry]):
    recorded_at = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=Machine.State.choices)
    progress = serializers.FloatField(allow_null=True)
    temperatures = serializers.DictField(child=serializers.FloatField(), help_text="sensor: °C")
    job = serializers.SerializerMethodField()
    error_text = serializers.CharField()

    def get_job(self, row: MachineTelemetry) -> str | None:
        return f"J-{row.job_id:06d}" if row.job_id else None


class MachineDetailSerializer(MachineSerializer):  # describes the response only
    telemetry = TelemetrySerializer(many=True, help_text="the last 100 reports, newest first")


# The factory's members who may change its machines (operators read them).
MANAGERS = frozenset({Membership.Role.MANAGER})
# Changed by staff only: they point the server at an address and a secret of its environment.
CONNECTOR_FIELDS = frozenset({"connector", "connector_url", "connector_secret_env"})


def priced(request: Request) -> dict[str, set[int]]:
    """The serializer context: the machines whose prices the user sees (those it manages)."""
    managed = tenancy.machines_for_operator(request.user, roles=MANAGERS)
    return {"priced": set(managed.values_list("pk", flat=True))}


class WorksOnAFloor(BasePermission):
    """Staff, or an operator or manager of a factory that operates a site; else 403."""

    message = "the machines are for staff and the operators of a factory"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return tenancy.is_operator(request.user)


def machines_for_floor(request: Request) -> QuerySet[Machine]:
    """The machines the user works on (all for staff), with what the serializer reads."""
    return (
        tenancy.machines_for_operator(request.user)
        .select_related("site")
        .prefetch_related("materials_loaded", "materials_loadable")
        .annotate(queued_jobs=Count("jobs", filter=Q(jobs__status__in=Job.ON_MACHINE)))
    )


class MachinesApi(APIView):
    permission_classes = [WorksOnAFloor]

    @extend_schema(responses=MachineSerializer(many=True), operation_id="machines_list")
    def get(self, request: Request) -> Response:
        # The stubs let only ModelSerializer take a queryset with many=True.
        floor = machines_for_floor(request)
        machines_list = MachineSerializer(
            floor,  # type: ignore[arg-type]
            many=True,
            context=priced(request),
        )
        return Response(machines_list.data)


class MachineDetailApi(APIView):
    permission_classes = [WorksOnAFloor]

    class InputSerializer(serializers.Serializer[Any]):  # input only: no instance
        class Meta:
            ref_name = "MachineChange"  # the schema's name ("Input" alone is ambiguous)

        state = serializers.ChoiceField(choices=Machine.State.choices, required=False)
        queue_limit = serializers.IntegerField(min_value=0, max_value=1000, required=False)
        hourly_rate = serializers.DecimalField(
            max_digits=8, decimal_places=2, min_value=0, required=False
        )
        power_w = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
        materials_loaded = serializers.ListField(
            child=serializers.SlugField(), max_length=50, required=False
        )
        materials_loadable = serializers.ListField(
            child=serializers.SlugField(), max_length=50, required=False
        )
        connector = serializers.ChoiceField(choices=Machine.Connector.choices, required=False)
        connector_url = serializers.URLField(max_length=200, required=False, allow_blank=True)
        connector_secret_env = serializers.RegexField(
            r"^([A-Z_][A-Z0-9_]*)?$", max_length=100, required=False, allow_blank=True
        )

    @extend_schema(responses=MachineDetailSerializer)
    def get(self, request: Request, slug: str) -> Response:
        machine = get_object_or_404(machines_for_floor(request), slug=slug)
        history = machine.telemetry.order_by("-recorded_at", "-pk")[:100]
        return Response(
            {
                **MachineSerializer(machine, context=priced(request)).data,
                "telemetry": TelemetrySerializer(
                    history,  # type: ignore[arg-type]  # a queryset with many=True (stubs)
                    many=True,
                ).data,
            }
        )

    @extend_schema(request=InputSerializer, responses=MachineSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        machine = get_object_or_404(tenancy.machines_for_operator(request.user), slug=slug)
        managed = tenancy.machines_for_operator(request.user, roles=MANAGERS)
        if not managed.filter(pk=machine.pk).exists():
            raise PermissionDenied("changing a machine is for staff and the factory's managers")
        changes = self.InputSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        if not request.user.is_staff and CONNECTOR_FIELDS & set(changes.validated_data):
            raise PermissionDenied("connector settings are changed by staff")
        machines.machine_update(
            machine_id=machine.pk,
            changes=machines.MachineChanges(**changes.validated_data),
            now=timezone.now(),
            actor=request.user.get_username(),
        )
        changed = get_object_or_404(machines_for_floor(request), slug=slug)
        return Response(MachineSerializer(changed, context=priced(request)).data)


class StrictFloatField(serializers.FloatField):
    """A JSON number, not a string that looks like one, nor a boolean."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class TelemetryThrottle(FailOpen, AnonRateThrottle):
    """Reports per machine (MF_API_TELEMETRY_RATE); without a valid token, per client address.

    A machine reports every few seconds on its own token, and several may share one address
    (a farm behind one router): counting them as anonymous writes per address would throttle
    a healthy farm, and one machine's bucket must not fill another's. A request whose token is
    no machine's is counted like any anonymous write (MF_API_WRITE_RATE_ANON, per address), so
    guessing tokens is throttled too.
    """

    scope = "telemetry"

    def get_rate(self) -> str | None:
        return rate_for(self.scope)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        machine = machines.machine_for_token(token.strip()) if scheme == "Machine" else None
        if machine is not None:
            return self.cache_format % {"scope": self.scope, "ident": f"machine-{machine.pk}"}
        self.rate = rate_for("write_anon")
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return self.cache_format % {"scope": "write_anon", "ident": self.get_ident(request)}


class MachineTelemetryApi(APIView):
    """POST /api/v1/machines/<slug>/telemetry/ with `Authorization: Machine <token>`."""

    authentication_classes: list[Any] = []  # the machine token is checked here, not a user
    permission_classes = [AllowAny]
    throttle_classes = [TelemetryThrottle]  # its own scope, not the per-address anonymous one

    class InputSerializer(serializers.Serializer[Any]):  # input only: no instance
        class Meta:
            ref_name = "TelemetryReport"  # the schema's name ("Input" alone is ambiguous)

        state = serializers.ChoiceField(choices=REPORTED_STATES, required=False)
        progress = StrictFloatField(min_value=0, max_value=100, required=False, allow_null=True)
        temperatures = serializers.DictField(
            child=StrictFloatField(min_value=-100, max_value=1000), required=False
        )
        current_job = serializers.IntegerField(
            min_value=1, max_value=ID_MAX, required=False, allow_null=True
        )
        current_plate = serializers.IntegerField(
            min_value=1,
            max_value=ID_MAX,
            required=False,
            allow_null=True,
            help_text="the id of the plate it runs (P-000012 is 12): it must be running on "
            "this machine",
        )
        job_state = serializers.ChoiceField(
            choices=JOB_STATES,
            required=False,
            help_text="how the current job or plate is doing; `complete` finishes it (it "
            "waits for QC), `cancelled` or `error` fails it (its parts are remade)",
        )
        error_text = serializers.CharField(max_length=2000, required=False, allow_blank=True)

        def validate_temperatures(self, value: dict[str, float]) -> dict[str, float]:
            if len(value) > MAX_TEMPERATURES:
                raise serializers.ValidationError(f"at most {MAX_TEMPERATURES} sensors")
            for name in value:
                if not (0 < len(name) <= 32 and name.replace("_", "").isalnum()):
                    raise serializers.ValidationError(f"bad sensor name {name[:40]!r}")
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs.get("current_job") and attrs.get("current_plate"):
                raise serializers.ValidationError(
                    {"current_plate": ["a machine runs a job or a plate, not both"]}
                )
            if "job_state" in attrs and not (
                attrs.get("current_job") or attrs.get("current_plate")
            ):
                raise serializers.ValidationError(
                    {"job_state": ["name the current_job or current_plate it is about"]}
                )
            return attrs

    class OutputSerializer(serializers.Serializer[Machine]):
        class Meta:
            ref_name = "TelemetryAnswer"

        slug = serializers.CharField()
        state = serializers.ChoiceField(choices=Machine.State.choices, help_text="as recorded")

    @extend_schema(
        request=InputSerializer,
        # No user authentication: the machine token is checked here (401, or 403 for another
        # machine's token), so the schema's common refusals would not list them.
        responses={
            200: OutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            409: ErrorSerializer,
        },
        description="Report a machine's state, and the progress, end or failure of the job "
        "or plate it runs; `Authorization: Machine <token>`. A plate that is not this "
        "machine's answers 400, one that is not running on it 409; nothing is changed.",
    )
    def post(self, request: Request, slug: str) -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        machine = machines.machine_for_token(token.strip()) if scheme == "Machine" else None
        if machine is None:
            return Response(
                {"message": "a machine token is required: Authorization: Machine <token>"},
                status=401,
                headers={"WWW-Authenticate": "Machine"},
            )
        if machine.slug != slug:
            return Response({"message": "this token is not for that machine"}, status=403)
        declared = request.META.get("CONTENT_LENGTH") or "0"
        size = int(declared) if declared.isdigit() else 0
        if size <= settings.MF_TELEMETRY_MAX_BYTES:
            size = len(request.body)  # the header may be missing or wrong
        if size > settings.MF_TELEMETRY_MAX_BYTES:
            return Response(
                {
                    "message": f"report too large: {size} bytes, at most "
                    f"{settings.MF_TELEMETRY_MAX_BYTES}"
                },
                status=400,
            )
        if not isinstance(request.data, dict):
            return Response({"message": "the report must be a JSON object"}, status=400)
        unknown = sorted(set(request.data) - set(self.InputSerializer().fields))
        if unknown:
            return Response(
                {
                    "message": "the request has errors",
                    "errors": {name[:40]: ["unknown field"] for name in unknown[:10]},
                },
                status=400,
            )
        report = self.InputSerializer(data=request.data)
        report.is_valid(raise_exception=True)
        values = report.validated_data
        try:
            machine = machines.telemetry_record(
                machine_id=machine.pk,
                report=machines.TelemetryReport(
                    state=values.get("state"),
                    progress=values.get("progress"),
                    temperatures=values.get("temperatures", {}),
                    job_id=values.get("current_job"),
                    job_state=values.get("job_state"),
                    error_text=values.get("error_text", ""),
                    plate_id=values.get("current_plate"),
                ),
                now=timezone.now(),
                actor=f"machine {machine.slug}",
                strict_plate=True,
            )
        except machines.PlateNotOnMachine as refusal:
            return Response(
                {"message": str(refusal), "errors": {"current_plate": [str(refusal)]}}, status=400
            )
        except machines.PlateNotRunning as refusal:
            return Response({"message": str(refusal)}, status=409)
        return Response(self.OutputSerializer(machine).data)

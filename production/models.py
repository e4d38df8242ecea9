"""How parts get made: sites, machines, jobs, their audit trail and their artifacts."""

import secrets
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F

from catalog.models import Material, PartPreview, Process
from orders.models import OrderLine, Organisation
from production.plates.values import KEEP_OUT_EXAMPLE, keep_out_zones_from_json


def validate_tool_numbers(value: object) -> None:
    """A list of distinct T numbers (positive whole numbers)."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of T numbers, e.g. [1, 2, 11].")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValidationError(f"{item!r} is not a T number (a whole number from 1).")
    if len(set(value)) != len(value):
        raise ValidationError("Each T number once.")


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{value!r} is not a time zone; use a name like Europe/Berlin."
        ) from None


def validate_keep_out_zones(value: object) -> None:
    """Rectangles of bed mm (production.plates.values.keep_out_zones_from_json); whether they
    lie inside the bed is Machine.clean's, which knows its size."""
    try:
        keep_out_zones_from_json(value)
    except ValueError as error:
        raise ValidationError(str(error)[:1].upper() + str(error)[1:] + ".") from error


class Site(models.Model):
    """A factory floor. The organisation that operates it (a factory) is whose operators and
    managers work on its machines' jobs (production.tenancy); a site without one is staff's."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    operator = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sites",
        help_text="the factory organisation whose operators and managers work here",
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="the IANA time zone its opening hours are in, e.g. Europe/Berlin",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SiteHours(models.Model):
    """One shift of a site's week (production.calendars): jobs start only while it is open.
    A site without any is open around the clock. A shift that closes at or before it opens
    runs into the next day (22:00-06:00; 00:00-00:00 is the whole day)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField(help_text="local time of the site")
    closes = models.TimeField(help_text="local time; at or before `opens`: the next day")

    class Meta:
        ordering = ["site", "weekday", "opens"]
        verbose_name_plural = "site hours"
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="weekday_0_to_6"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class SiteClosure(models.Model):
    """A stretch when a site is closed whatever its hours: a holiday, a stocktake."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="closures")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["site", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="closure_ends_after"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site}: closed {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%H:%M}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "A closure ends after it starts."})


class TransitTime(models.Model):
    """How long parts take from one site to another: the router adds it to a machine's
    completion time when the order's delivery site is elsewhere (production.routing).

    A pair holds both ways unless the other way has a row of its own; a site to itself is 0
    without a row. Two sites with no row either way have no route: nothing made at one is
    delivered to the other."""

    from_site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="transit_out")
    to_site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="transit_in")
    hours = models.FloatField(
        validators=[MinValueValidator(0)], help_text="door to door, in hours (24 = one day)"
    )

    class Meta:
        ordering = ["from_site__name", "to_site__name"]
        constraints = [
            models.UniqueConstraint(fields=["from_site", "to_site"], name="one_transit_per_pair"),
            models.CheckConstraint(
                condition=~models.Q(from_site=models.F("to_site")), name="transit_between_sites"
            ),
            models.CheckConstraint(condition=models.Q(hours__gte=0), name="transit_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.from_site} → {self.to_site}: {self.hours:g} h"


class Machine(models.Model):
    class State(models.TextChoices):
        IDLE = "idle"
        BUSY = "busy"
        PAUSED = "paused"
        OFFLINE = "offline"
        MAINTENANCE = "maintenance"
        ERROR = "error"

    class Flavour(models.TextChoices):
        MARLIN = "marlin"
        KLIPPER = "klipper"
        # CNC mills and lasers: the G-code dialect their programs are posted in.
        GRBL = "grbl"
        LINUXCNC = "linuxcnc"

    class ToolpathEngine(models.TextChoices):
        BUILTIN = "builtin", "Microfactory FDM slicer"
        PRUSASLICER = "prusaslicer", "PrusaSlicer CLI"

    class Connector(models.TextChoices):
        MANUAL = "manual"
        OCTOPRINT = "octoprint"
        MOONRAKER = "moonraker"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="machines")
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    model = models.CharField(max_length=100, blank=True, help_text="maker and model")
    process = models.CharField(max_length=20, choices=Process.choices, default=Process.FDM)
    build_x_mm = models.FloatField()
    build_y_mm = models.FloatField()
    build_z_mm = models.FloatField()
    nozzle_mm = models.FloatField(default=0.4)
    flavour = models.CharField(max_length=10, choices=Flavour.choices, default=Flavour.MARLIN)
    toolpath_engine = models.CharField(
        max_length=20, choices=ToolpathEngine.choices, default=ToolpathEngine.BUILTIN
    )
    materials_loaded = models.ManyToManyField(Material, blank=True, related_name="machines")
    hourly_rate = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    # What the machine draws while it runs, for the energy in a job's cost (production.costing);
    # empty: the typical draw of its process (costing.DEFAULT_POWER_W).
    power_w = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="average electrical power while running, in watts (empty: the process's default)",
    )
    connector = models.CharField(max_length=12, choices=Connector.choices, default="manual")
    state = models.CharField(max_length=12, choices=State.choices, default=State.IDLE)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Materials an operator can load here (spools on the shelf): routable with a changeover.
    materials_loadable = models.ManyToManyField(
        Material, blank=True, related_name="loadable_on", help_text="can be loaded on request"
    )
    connector_url = models.URLField(blank=True, help_text="OctoPrint or Moonraker base URL")
    # The NAME of an environment variable holding the API key: the key itself never enters
    # the database, the admin or the API.
    connector_secret_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "an environment variable name, e.g. MK4_1_KEY")
        ],
        help_text="name of the environment variable that holds the connector's API key",
    )
    # sha256 of the machine's telemetry token (manage.py machine_token SLUG shows it once).
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    queue_limit = models.PositiveIntegerField(
        default=10, help_text="most jobs routed here at once (queued, dispatched and running)"
    )
    # Latest telemetry; the history is in MachineTelemetry.
    progress = models.FloatField(null=True, blank=True, help_text="percent of the current job")
    temperatures = models.JSONField(default=dict, blank=True)
    error_text = models.TextField(blank=True)
    current_job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # CNC mills: the tools it holds, as T numbers of the shop's tool table (production.toolpath
    # .cnc_tools.DEFAULT_TOOL_TABLE); the milling planner uses these only. Empty: all of them.
    tool_numbers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_tool_numbers],
        help_text="CNC mills: T numbers of the shop's tool table held here, e.g. [1, 2, 11]",
    )
    spindle_max_rpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="CNC mills: fastest spindle speed (empty: 24000 rpm)"
    )
    # Lasers: the cut's width (the planner offsets every contour by half of it) and the S value
    # of full power (GRBL's $30), which power percentages are scaled to.
    kerf_mm = models.FloatField(
        null=True, blank=True, help_text="lasers: width of the cut in mm, e.g. 0.15"
    )
    max_power_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="lasers: the S value of full power (GRBL $30), e.g. 1000"
    )
    # Which rows of the laser cutting table apply (production.toolpath.laser.CUT_TABLE).
    laser_source = models.CharField(
        max_length=10,
        blank=True,
        choices=[("co2", "CO2"), ("fibre", "fibre")],
        help_text="lasers: the kind of source, which sets the power and speed per material",
    )
    # Printers: rectangles of the bed no copy of a plate may cover (production.plates.arrange
    # keeps them and the bed's margin clear).
    keep_out_zones = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_keep_out_zones],
        help_text=(
            "printers: rectangles of the bed (mm, origin front-left) no part is placed on, "
            f"e.g. {KEEP_OUT_EXAMPLE}"
        ),
    )

    # States in which a machine takes work; the router never assigns to any other.
    AVAILABLE = frozenset({State.IDLE, State.BUSY, State.PAUSED})

    class Meta:
        ordering = ["site", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        # The zones' shape is the field validator's; here, whether they lie inside this bed.
        if self.keep_out_zones and self.build_x_mm and self.build_y_mm:
            try:
                keep_out_zones_from_json(self.keep_out_zones)
            except ValueError:
                return  # the field's validator says what is wrong, once
            try:
                keep_out_zones_from_json(
                    self.keep_out_zones, bed_mm=(self.build_x_mm, self.build_y_mm)
                )
            except ValueError as error:
                message = str(error)[:1].upper() + str(error)[1:] + "."
                raise ValidationError({"keep_out_zones": message}) from error

    @property
    def build_volume_mm(self) -> tuple[float, float, float]:
        return (self.build_x_mm, self.build_y_mm, self.build_z_mm)

    @property
    def is_connected(self) -> bool:
        """Driven over the network (OctoPrint, Moonraker) rather than by an operator."""
        return self.connector != self.Connector.MANUAL


def new_passport_token() -> str:
    """The secret part of a job's passport URL: 128 random bits, so it cannot be guessed."""
    return secrets.token_urlsafe(16)


class Job(models.Model):
    """Making one order line's quantity in one machine run, from geometry to machine."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        GEOMETRY_BUILT = "geometry_built", "geometry built"
        VALIDATED = "validated"
        TOOLPATH_READY = "toolpath_ready", "toolpath ready"
        TRAVELER_READY = "traveler_ready", "traveler ready"
        ROUTED = "routed", "routed to machine"
        DISPATCHED = "dispatched", "sent to machine"
        RUNNING = "running"
        PAUSED = "paused"  # stopped mid-run by the operator or the machine; still holds it
        AWAITING_QC = "awaiting_qc", "awaiting QC"
        DONE = "done", "QC passed"  # some copies may have been scrapped: see qc_scrapped
        SCRAPPED = "scrapped"  # every copy failed QC; a replacement job remakes them
        REJECTED = "rejected"
        FAILED = "failed"
        CANCELLED = "cancelled"

    # Nothing more happens to a job in one of these.
    TERMINAL = frozenset(
        {Status.REJECTED, Status.FAILED, Status.CANCELLED, Status.DONE, Status.SCRAPPED}
    )
    # The pipeline has nothing left to run: the job is at a machine, past it, or ended. The
    # reconciler never re-enqueues these into the pipeline.
    PIPELINE_DONE = TERMINAL | {
        Status.ROUTED,
        Status.DISPATCHED,
        Status.RUNNING,
        Status.PAUSED,
        Status.AWAITING_QC,
    }
    # A machine has begun the job and not finished it: it occupies the machine, which can start
    # nothing else, and fails (with a replacement) if the machine goes down.
    STARTED = frozenset({Status.RUNNING, Status.PAUSED})
    # Jobs a machine holds: they fill its queue and are re-routed or failed when it goes down.
    ON_MACHINE = frozenset({Status.ROUTED, Status.DISPATCHED}) | STARTED
    # The order a machine takes its waiting jobs in (dispatch, the station, the floor view):
    # the ones moved on the floor first, by rank, then the others as they were routed.
    QUEUE_ORDER = (F("queue_rank").asc(nulls_last=True), "status_changed_at", "pk")

    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="jobs")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(blank=True, help_text="why the job was rejected or failed")
    # Why the router sent it to its site (production.routing.Choice.reason), written with the
    # routing move; site names only, as the customer reads it on the order page.
    route_reason = models.TextField(blank=True, help_text="why the router chose its site")
    machine = models.ForeignKey(
        Machine, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    dfm_report = models.JSONField(null=True, blank=True)
    toolpath_meta = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # Last time a step message was sent for this job (services.job_enqueue), and its Celery
    # task id: the reconciler looks for that id in the broker to tell a message waiting in a
    # backlog from a lost one (production.broker). Empty for messages sent before it was kept.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueued_task_id = models.CharField(max_length=64, blank=True)
    # The worker running the job's current step (services.job_claim): taken when a step
    # starts, for as long as the step may take (JOB_CLAIM_S). A claim taken before the job's
    # last status change belongs to an earlier step. The reconciler re-enqueues a job whose
    # claim expired (its worker died mid-step) and leaves one alone while its claim holds.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=150, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # The failed job this one remakes (its machine died while running it).
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replacements"
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="the machine started it")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="the machine finished it")
    progress = models.FloatField(null=True, blank=True, help_text="percent done on the machine")
    # QC at the station: how many copies passed and were scrapped, and what was measured
    # ({check label: value in mm}).
    qc_passed = models.PositiveIntegerField(default=0)
    qc_scrapped = models.PositiveIntegerField(default=0)
    measurements = models.JSONField(default=dict, blank=True)
    # The passport page's URL is /passport/<id>/<token>/ (production.passport): known from the
    # job's creation, so the traveler's QR code can point to it before the traveler exists.
    passport_token = models.CharField(max_length=32, default=new_passport_token, editable=False)
    # Why the router must leave the job waiting once its traveler is ready (its order line's
    # estimated price is checked on the built part first); empty: free to route. Set when the
    # job is created, cleared by services.jobs_release. Not a status: the pipeline runs on.
    hold = models.CharField(max_length=200, blank=True)
    # Its place in its machine's queue once someone moved it there on the floor view
    # (production.floor): 1 first. Jobs never moved (null) follow the ranked ones in the
    # order they were routed (QUEUE_ORDER); routing it anew clears it.
    queue_rank = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["pk"]
        indexes = [
            # The reconciler's scan: non-terminal jobs by how long they have been silent.
            models.Index(fields=["status", "status_changed_at"], name="job_status_changed"),
            # The dashboard's performance read: runs a period's machines finished.
            models.Index(fields=["finished_at"], name="job_finished"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"J-{self.pk:06d}"

    @property
    def is_finished(self) -> bool:
        """The pipeline has nothing left to run for it (it may still be at a machine)."""
        return self.status in self.PIPELINE_DONE


class JobEvent(models.Model):
    """One state change of a job: the audit trail and the dashboard's data."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    step = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=150, help_text="user, worker host or 'system'")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    message = models.TextField(blank=True)
    # When the orders app followed the event (job webhook queued, order re-evaluated); null
    # while it is still to follow. Written once, by the claim in
    # production.public.job_events_claim_pending, never by the lifecycle.
    followed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["finished_at", "pk"]
        indexes = [
            # The dashboard's reads (production.dashboards): the events of a period.
            models.Index(fields=["finished_at"], name="job_event_finished"),
            # The follower's scan (production.public.job_events_claim_pending): events still
            # to follow, in id order. Partial, so followed events (nearly all) stay out of it.
            models.Index(
                fields=["id"],
                condition=models.Q(followed_at__isnull=True),
                name="job_event_to_follow",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job}: {self.from_status or '-'} -> {self.to_status}"


def artifact_path(artifact: "Artifact", filename: str) -> str:
    return f"artifacts/{artifact.input_key[:2]}/{artifact.input_key}/{filename}"


class Artifact(models.Model):
    """A file a step produced, addressed by the sha256 of the inputs that determine it.

    Two jobs asking for the same part with the same parameters, engine and profile share one
    artifact; a retried step finds it and does not build again.
    """

    class Kind(models.TextChoices):
        STEP = "step", "STEP model"
        STL = "stl", "STL mesh"
        REPAIRED = "repaired", "repaired STL mesh"  # as validation mended it; sliced instead
        SVG = "svg", "SVG drawing"
        GCODE = "gcode", "G-code"
        TRAVELER = "traveler", "traveler PDF"
        # A milling program's simulated result (PNG) or a laser program's cut paths (SVG),
        # for the traveler.
        RENDER = "render", "program rendering"
        LABELS = "labels", "bag labels PDF"  # a plate's, one label per job on it
        # A mesh's DFM report (JSON) against a set of machines, by its checker: a repeat
        # configuration reads it back instead of checking again (pipeline.steps.dfm_key).
        DFM = "dfm", "DFM report"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    input_key = models.CharField(max_length=64, help_text="sha256 of the inputs")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the file's bytes")
    file = models.FileField(upload_to=artifact_path, max_length=300)
    size = models.PositiveBigIntegerField()
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "input_key"], name="one_artifact_per_input"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.input_key[:12]}"


class JobArtifact(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="job_artifacts")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="job_links")
    kind = models.CharField(max_length=10, choices=Artifact.Kind.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "kind"], name="one_artifact_kind_per_job"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.job}"


class PassportEntry(models.Model):
    """One link of a job's passport chain: the sha256 of an input or a file the pipeline made,
    chained to the entry before it and signed with the server's key. Written only by
    production.passport, appended, never changed."""

    class Kind(models.TextChoices):
        SCRIPT = "script", "revision script"
        MODEL = "model", "revision model file"  # a static revision's STEP or STL upload
        PARAMETERS = "parameters", "canonical parameters"
        STEP = "step", "STEP model"
        STL = "stl", "STL mesh"
        SVG = "svg", "SVG drawing"
        DFM_REPORT = "dfm_report", "DFM report"
        REPAIRED = "repaired", "repaired STL mesh"
        GCODE = "gcode", "G-code"
        TRAVELER = "traveler", "traveler PDF"
        RENDER = "render", "program rendering"
        LABELS = "labels", "bag labels PDF"  # a plate's, one label per job on it

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="passport_entries")
    seq = models.PositiveIntegerField(help_text="0 for the first entry")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the input or file")
    prev_chain_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(
        max_length=64, help_text="sha256(prev_chain_hash + kind + sha256)"
    )
    public_key = models.CharField(max_length=64, help_text="Ed25519 public key that signed (hex)")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature (hex)")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [
            # One chain per job: two appends racing for the same place cannot both land, and
            # a step kept twice cannot record its file twice.
            models.UniqueConstraint(fields=["job", "seq"], name="one_passport_entry_per_place"),
            models.UniqueConstraint(fields=["job", "kind"], name="one_passport_entry_per_kind"),
        ]
        verbose_name_plural = "passport entries"

    def __str__(self) -> str:
        return f"{self.job} #{self.seq} {self.kind}"


class MachineTelemetry(models.Model):
    """One report from a machine (its agent or our poller), kept MF_TELEMETRY_RETENTION_H."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="telemetry")
    recorded_at = models.DateTimeField()
    state = models.CharField(max_length=12, choices=Machine.State.choices)
    progress = models.FloatField(null=True, blank=True)
    temperatures = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error_text = models.TextField(blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            # The dashboard's read: one machine's recent history.
            models.Index(fields=["machine", "recorded_at"], name="telemetry_machine_time"),
            # The pruning task's delete: everything older than the retention window.
            models.Index(fields=["recorded_at"], name="telemetry_time"),
        ]

    def __str__(self) -> str:
        return f"{self.machine} {self.state} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class MachineFile(models.Model):
    """A file we sent to a networked machine (OctoPrint, Moonraker) and have not deleted there
    yet. Recorded right before the upload; the poller deletes the file on the machine once
    its job has left the machine for good (production.machines.machine_files_remove), then
    this row. A row lives on while the machine is unreachable, so the removal is retried."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=255)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sent_at = models.DateTimeField()
    failed_removals = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["machine", "pk"]
        constraints = [
            # A job sent again (after a lost start) overwrites its file: still one file there.
            models.UniqueConstraint(fields=["machine", "filename"], name="machine_file_once"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} on {self.machine}"


class MachineEvent(models.Model):
    """One change of a machine's state (production.lifecycle writes them, nothing else)."""

    class Loss(models.TextChoices):
        """Why the machine is not making good parts from this event on (the dashboard's OEE
        loss reasons, production.dashboards). Empty: it runs. Set by lifecycle.machine_move,
        inferred from the state it goes to unless the caller names it."""

        NONE = "", "running"
        DOWN = "down", "down (offline, error, maintenance)"
        MATERIAL = "material", "waiting for material"
        NO_WORK = "no_work", "no work (idle, empty queue)"
        WAITING = "waiting", "idle with work queued"
        PAUSED = "paused", "paused by operator"

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=12, choices=Machine.State.choices)
    to_state = models.CharField(max_length=12, choices=Machine.State.choices)
    actor = models.CharField(max_length=150, help_text="user, worker host or 'system'")
    at = models.DateTimeField()
    reason = models.TextField(blank=True)
    loss = models.CharField(max_length=10, choices=Loss.choices, blank=True, default="")

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # The dashboard's read: one machine's state history (utilisation, downtime).
            models.Index(fields=["machine", "at"], name="machine_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.machine}: {self.from_state} -> {self.to_state}"


class PreviewDfm(models.Model):
    """The DFM report of a built preview for one material, against the machines that could
    make it: computed on demand by a worker (production.dfm_previews), shown on the part page
    and returned by the API before anything is ordered. A cache: any row can be dropped.

    `machines_key` is the sha256 of everything the report depends on besides the mesh (the
    candidate machines' facts and the validation limits), so a new machine, a spool change or
    a new limit asks for a new report instead of showing a stale one.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        CHECKING = "checking"
        READY = "ready"  # the report is there; it may say the part cannot be made
        FAILED = "failed"  # no report: nothing to check it against, or the check crashed

    preview = models.ForeignKey(PartPreview, on_delete=models.CASCADE, related_name="dfm_reports")
    material = models.ForeignKey(Material, on_delete=models.CASCADE, related_name="+")
    machines_key = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    report = models.JSONField(null=True, blank=True)  # ValidationReport.to_json()
    queued_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["preview", "material", "machines_key"],
                name="one_preview_dfm_per_machine_set",
            ),
        ]

    def __str__(self) -> str:
        return f"DFM of {self.preview} in {self.material} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)


class Spool(models.Model):
    """A spool (or lot) of filament at a site: what a machine's tool is loaded with.

    `remaining_g` is written by production.spools only, by conditional updates, each with a
    SpoolBooking row saying which job took (or gave back) how many grams, when and by whom:
    the bookings of a spool add up to `initial_g - remaining_g`, minus its shortfalls. It
    never goes below zero: a job that needs more than is left takes what there is and books
    the rest as a shortfall.
    """

    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="spools")
    colour = models.CharField(max_length=60, blank=True)
    lot_number = models.CharField(max_length=64, help_text="the maker's lot or batch number")
    initial_g = models.DecimalField(
        max_digits=9,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="net filament on the spool when it arrived, in grams",
    )
    remaining_g = models.DecimalField(
        max_digits=9, decimal_places=2, help_text="filament left, in grams (bookings keep it)"
    )
    # The price of this lot, for a job's material cost; empty: the material's price.
    price_per_kg = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="spools")
    # An FDM machine has one tool: one spool on it at a time (the unique one-to-one).
    loaded_on = models.OneToOneField(
        Machine,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="spool",
        help_text="the machine whose tool it is loaded on (production.spools.spool_load)",
    )
    loaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site", "material", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(remaining_g__gte=0), name="spool_remaining_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(remaining_g__lte=models.F("initial_g")),
                name="spool_remaining_at_most_initial",
            ),
        ]
        indexes = [
            # The station's stock read: a site's spools of a material that still hold some.
            models.Index(fields=["site", "material", "remaining_g"], name="spool_site_stock"),
        ]

    def __str__(self) -> str:
        colour = f" {self.colour}" if self.colour else ""
        return f"{self.number} {self.material}{colour}, lot {self.lot_number}"

    @property
    def number(self) -> str:
        """The spool's own number, printed on its label and scanned at the station."""
        return f"S-{self.pk:06d}"

    @property
    def is_low(self) -> bool:
        """Soon to be changed: less left than MF_SPOOL_LOW_G."""
        return self.remaining_g < Decimal(str(settings.MF_SPOOL_LOW_G))


class SpoolBooking(models.Model):
    """Grams a job took from a spool, or gave back: the audit of every gram (production.spools
    writes them with the change of `Spool.remaining_g`, in one transaction).

    - start: the filament of the job's G-code, taken from the spool loaded when it started
      (what the spool still had, if less);
    - correction: at the end of the run, what it used against what was booked (zero for a
      finished job, whatever its QC; grams given back for a print stopped part-way);
    - shortfall: grams the job needed that the spool did not have; not taken from it (it is
      empty), booked so the gap is seen and warned about.
    """

    class Kind(models.TextChoices):
        START = "start"
        CORRECTION = "correction"
        SHORTFALL = "shortfall"

    spool = models.ForeignKey(Spool, on_delete=models.PROTECT, related_name="bookings")
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="spool_bookings")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    grams = models.DecimalField(
        max_digits=9, decimal_places=2, help_text="taken from the spool (negative: given back)"
    )
    at = models.DateTimeField()
    by = models.CharField(max_length=150, help_text="user, worker host or 'system'")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            # A job is booked once when it starts and corrected once when its run ends: a
            # second start or finish (a resent form, a repeated poll) books nothing.
            models.UniqueConstraint(
                fields=["job", "kind"],
                condition=models.Q(kind__in=["start", "correction"]),
                name="one_start_and_one_correction_per_job",
            ),
        ]
        indexes = [
            # The spool page's read: a spool's latest bookings.
            models.Index(fields=["spool", "at"], name="spool_booking_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.grams} g of {self.spool.number} for {self.job}"


# --- build plates (#13): what a machine runs, and the copies of jobs' parts on it -----------


class Plate(models.Model):
    """One build plate: one G-code program for one machine profile, one material, one process
    profile, holding placed copies of one or more jobs' parts (PlateCopy). Planned by the
    worker (production.plating), routed as a whole by the router, run and QC'd at the station.
    Its status is written by production.lifecycle only (plate_move)."""

    class Status(models.TextChoices):
        READY = "ready", "ready to route"  # program and traveler made and checked
        ROUTED = "routed", "routed to machine"
        RUNNING = "running"
        FINISHED = "finished", "awaiting QC"
        DONE = "done", "QC recorded"  # every copy passed or scrapped
        FAILED = "failed"
        CANCELLED = "cancelled"

    # The machine is running or about to run it: it counts in that machine's queue.
    ON_MACHINE = frozenset({Status.ROUTED, Status.RUNNING})
    TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED})

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.READY)
    status_changed_at = models.DateTimeField()
    machine = models.ForeignKey(
        Machine, null=True, blank=True, on_delete=models.PROTECT, related_name="plates"
    )
    planned_for = models.CharField(
        max_length=50, blank=True, help_text="slug of the machine whose bed it was planned on"
    )
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="plates")
    # What makes plates compatible: the machine profile and slicer settings the program was
    # made for (production.plating.batch_key), and the profile itself as JSON.
    batch_key = models.CharField(max_length=64)
    process_profile = models.JSONField(default=dict, blank=True)
    gcode = models.ForeignKey(
        "Artifact", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    traveler = models.ForeignKey(
        "Artifact", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The bag labels of its jobs (one 62 mm label each), made with its traveler.
    labels = models.ForeignKey(
        "Artifact", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    map_svg = models.TextField(blank=True, help_text="top view of the bed, copies numbered")
    number_in_plan = models.PositiveIntegerField(default=1)
    plates_in_plan = models.PositiveIntegerField(default=1)
    estimated_time_s = models.PositiveIntegerField(default=0)
    filament_g = models.FloatField(default=0)
    layers = models.PositiveIntegerField(default=0)
    engine = models.CharField(max_length=20, blank=True)
    verification = models.JSONField(default=dict, blank=True)
    route_reason = models.TextField(blank=True)
    reason = models.TextField(blank=True, help_text="why it failed or was cancelled")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["status", "machine"], name="plate_status_machine")]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        """The plate's code, printed on its traveler and scanned at the station."""
        return f"P-{self.pk:06d}"


class PlateCopy(models.Model):
    """One copy of a job's part on a plate: where it stands and how it came out of QC. A job
    of quantity N has N copies (1..N) over one or more plates; each keeps its identity to QC."""

    class Qc(models.TextChoices):
        PENDING = "pending"
        PASSED = "passed"
        SCRAPPED = "scrapped"
        # Its job was cancelled after the plate started: printed all the same, neither made
        # nor scrapped (a plate not started is made again without it).
        CANCELLED = "cancelled"

    plate = models.ForeignKey(Plate, on_delete=models.CASCADE, related_name="copies")
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="plate_copies")
    copy_index = models.PositiveIntegerField(help_text="which of the job's copies: 1..quantity")
    number = models.PositiveIntegerField(help_text="its number on the plate map")
    x_mm = models.FloatField()
    y_mm = models.FloatField()
    rotation_deg = models.FloatField(default=0, help_text="turned about Z")
    qc = models.CharField(max_length=10, choices=Qc.choices, default=Qc.PENDING)
    qc_reason = models.TextField(blank=True)
    qc_by = models.CharField(max_length=150, blank=True)
    qc_at = models.DateTimeField(null=True, blank=True)
    # What QC measured on this copy ({check label: value in mm}), as Job.measurements is for a
    # job made as one part.
    measurements = models.JSONField(default=dict, blank=True)
    remake = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="remade_copies"
    )

    class Meta:
        ordering = ["plate", "number"]
        constraints = [
            # A copy is planned once: two planners racing for the same jobs cannot both land.
            models.UniqueConstraint(fields=["job", "copy_index"], name="one_plate_copy_per_copy"),
            models.UniqueConstraint(fields=["plate", "number"], name="one_number_per_plate_copy"),
        ]
        verbose_name_plural = "plate copies"

    def __str__(self) -> str:
        return f"{self.job} copy {self.copy_index} on {self.plate}"

"""How parts get made: sites, machines, jobs, their audit trail and their artifacts."""

from django.conf import settings
from django.db import models

from catalog.models import Material, Process
from orders.models import OrderLine


class Site(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
    connector = models.CharField(max_length=12, choices=Connector.choices, default="manual")
    state = models.CharField(max_length=12, choices=State.choices, default=State.IDLE)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["site", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def build_volume_mm(self) -> tuple[float, float, float]:
        return (self.build_x_mm, self.build_y_mm, self.build_z_mm)


class Job(models.Model):
    """Making one order line's quantity in one machine run, from geometry to machine."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        GEOMETRY_BUILT = "geometry_built", "geometry built"
        VALIDATED = "validated"
        TOOLPATH_READY = "toolpath_ready", "toolpath ready"
        TRAVELER_READY = "traveler_ready", "traveler ready"
        ROUTED = "routed", "routed to machine"
        REJECTED = "rejected"
        FAILED = "failed"

    # The pipeline's end states: nothing more runs for a job in one of these.
    TERMINAL = frozenset({Status.ROUTED, Status.REJECTED, Status.FAILED})

    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="jobs")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(blank=True, help_text="why the job was rejected or failed")
    machine = models.ForeignKey(
        Machine, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    dfm_report = models.JSONField(null=True, blank=True)
    toolpath_meta = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # Last time a task was queued for this job; the reconciler re-enqueues jobs silent too long.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [
            # The reconciler's scan: non-terminal jobs by how long they have been silent.
            models.Index(fields=["status", "status_changed_at"], name="job_status_changed"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"J-{self.pk:06d}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL


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

    class Meta:
        ordering = ["finished_at", "pk"]

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
        SVG = "svg", "SVG drawing"
        GCODE = "gcode", "G-code"
        TRAVELER = "traveler", "traveler PDF"

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

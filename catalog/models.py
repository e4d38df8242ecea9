"""What can be made: part families, their immutable revisions, and materials."""

import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_thicknesses(value: object) -> None:
    """A list of positive numbers (mm): the plate or sheet thicknesses a material comes in."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of thicknesses in mm, e.g. [3, 6, 10].")
    for item in value:
        # bool is an int in Python; true is no thickness.
        if isinstance(item, bool) or not isinstance(item, int | float) or not item > 0:
            raise ValidationError(f"{item!r} is not a positive thickness in mm.")
        if item > 1000:
            raise ValidationError(f"{item!r} mm is thicker than any plate we stock.")


class Process(models.TextChoices):
    FDM = "fdm", "FDM 3D printing"
    CNC_MILL = "cnc_mill", "CNC milling"
    LASER = "laser", "Laser cutting"


class Material(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    process = models.CharField(max_length=20, choices=Process.choices, default=Process.FDM)
    density_g_cm3 = models.DecimalField(max_digits=6, decimal_places=3)
    price_per_kg = models.DecimalField(max_digits=8, decimal_places=2)
    # Plate or sheet stock (CNC milling, laser cutting): the thicknesses the shop holds (mm),
    # e.g. [3, 6, 10]; empty for filaments. The milling planner takes the thinnest plate at
    # least as thick as the part, the laser a sheet as thick as the part (production.pipeline
    # .programs); the route quote buys the thinnest that holds the part (orders.routes).
    sheet_thicknesses_mm = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_thicknesses],
        help_text="plate or sheet thicknesses in stock, in mm: [3, 6, 10]; empty for filament",
    )
    nozzle_temp_c = models.PositiveSmallIntegerField(default=210)
    bed_temp_c = models.PositiveSmallIntegerField(default=60)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PartFamily(models.Model):
    """A part in the digital inventory; what it looks like lives in its revisions."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True)
    tags = models.CharField(
        max_length=300, blank=True, help_text="Comma-separated search words: 'M6, guard, lathe'"
    )
    description = models.TextField(blank=True)
    # Retired families are hidden from ordering but stay buildable for orders already placed.
    retired = models.BooleanField(default=False)
    # A customer's uploaded model (orders.CustomerUpload): listed in no catalog page or API and
    # orderable only by the organisation that uploaded it (orders.services checks the owner).
    private = models.BooleanField(
        default=False, help_text="a customer's uploaded part: hidden from the catalog"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "part families"

    def __str__(self) -> str:
        return self.name

    def current_revision(self) -> "PartRevision | None":
        return self.revisions.filter(published_at__isnull=False).order_by("-number").first()

    @property
    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


class PartRevision(models.Model):
    """One immutable version of a part: a CadQuery script with its parameter schema, or a
    static model (STEP or STL upload) for a legacy part, with how to make and check it.

    Once published_at is set nothing changes (catalog.services refuses it, the admin shows it
    read-only); orders point at the revision they were placed on, so a new revision never
    alters them.
    """

    class Kind(models.TextChoices):
        SCRIPT = "script", "CadQuery script"
        STATIC = "static", "Static model (STEP or STL)"

    family = models.ForeignKey(PartFamily, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SCRIPT)
    script = models.TextField(
        blank=True, help_text="CadQuery script in cqgi form: parameters + show_object"
    )
    model_file = models.FileField(
        upload_to="catalog/models/",
        blank=True,
        help_text="STEP or STL file of a static model (no parameters)",
    )
    model_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    model_format = models.CharField(max_length=4, blank=True, editable=False)  # "step" | "stl"
    parameter_schema = models.JSONField(default=list, blank=True)
    rules = models.JSONField(default=list, blank=True)
    # The primary process; `alternative_processes` are the others it may be made by (issue
    # #16: a cover plate printed, milled or laser-cut): each order line is routed to one of
    # them (orders.routes), in one of the revision's materials of that process.
    process = models.CharField(max_length=20, choices=Process.choices, default=Process.FDM)
    alternative_processes = models.JSONField(
        default=list,
        blank=True,
        help_text='other processes it can be made by, e.g. ["cnc_mill", "laser"]',
    )
    materials = models.ManyToManyField(Material, related_name="revisions")
    description = models.TextField(blank=True, help_text="What this revision is or changes")
    work_instructions = models.JSONField(
        default=list, blank=True, help_text='Steps for the shop floor: ["Deburr the bore", ...]'
    )
    qc_checks = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"label": "Bore", "parameter": "bore_d", "tolerance_minus": 0, '
        '"tolerance_plus": 0.2}] or "nominal": 3 instead of "parameter"',
    )
    checksum = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["family", "number"]
        constraints = [
            models.UniqueConstraint(fields=["family", "number"], name="unique_revision_number"),
        ]

    def __str__(self) -> str:
        return f"{self.family.name} rev {self.number}"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def label(self) -> str:
        return f"{self.family.slug} r{self.number}"

    @property
    def allowed_processes(self) -> list[str]:
        """The primary process first, then the alternatives (unknown values left out)."""
        known = set(Process.values)
        extra = [p for p in self.alternative_processes or [] if p in known and p != self.process]
        return [self.process, *dict.fromkeys(extra)]

    def process_for(self, material: Material) -> str:
        """The process a material makes this revision by: the material's own when allowed
        (a 6061 plate is milled), else the primary (materials kept from before routes)."""
        return material.process if material.process in self.allowed_processes else self.process

    def compute_checksum(self) -> str:
        """sha256 over what determines the geometry: script, schema and rules, and for a
        static model its kind and the model file's sha256 (script revisions keep the
        checksum they had before static models existed)."""
        content: dict[str, object] = {
            "script": self.script,
            "schema": self.parameter_schema,
            "rules": self.rules,
        }
        if self.kind == self.Kind.STATIC:
            content.update(kind=self.kind, model_sha256=self.model_sha256)
        payload = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def alternative_processes_problem(primary: str, values: object) -> str | None:
    """Why a revision's alternative processes are not acceptable; None when they are: a list
    of known processes (catalog.Process), none of them the primary, none twice."""
    if not isinstance(values, list):
        return 'give a list of processes, e.g. ["cnc_mill", "laser"]'
    known = ", ".join(Process.values)
    for value in values:
        if not isinstance(value, str) or value not in Process.values:
            return f"unknown process {str(value)[:40]!r}; choose from {known}"
        if value == primary:
            return f"{value} is the primary process already"
    if len(set(values)) != len(values):
        return "a process is listed twice"
    return None


class PartPreview(models.Model):
    """The geometry of one configuration of a revision, built for the browser viewer.

    Content-addressed: `key` is the sha256 of the revision checksum, the canonical
    parameters and the geometry engine version, so asking again for the same configuration
    finds this row (ready: at once; queued or building: the same build).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    key = models.CharField(max_length=64, unique=True)
    revision = models.ForeignKey(PartRevision, on_delete=models.CASCADE, related_name="previews")
    parameters = models.JSONField()
    parameters_hash = models.CharField(max_length=64)
    engine = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    glb = models.FileField(upload_to="catalog/previews/", blank=True)
    svg = models.FileField(upload_to="catalog/previews/", blank=True)
    stl = models.FileField(upload_to="catalog/previews/", blank=True)
    bbox_mm = models.JSONField(null=True, blank=True)
    volume_mm3 = models.FloatField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When it was last queued: a build queued long ago and never finished is queued again.
    queued_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The in-flight limit counts a user's unfinished previews on every request.
            models.Index(fields=["requested_by", "status"], name="preview_user_status"),
        ]

    def __str__(self) -> str:
        return f"preview {self.key[:12]} of {self.revision} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)


class RevisionEstimator(models.Model):
    """A published revision's fitted volume and size for configurations nobody built yet
    (catalog.estimator), so a quote before the geometry exists is close to the price after.

    Fitted once, in a worker, from sample configurations (the corners of the parameter
    ranges and random valid mixes) measured in the sandbox right after publishing. Derived
    data beside the frozen revision: fitting again (a new geometry engine, a better fit)
    changes no order, since orders keep the quote they were placed on.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        FITTING = "fitting"
        READY = "ready"
        FAILED = "failed"

    revision = models.OneToOneField(
        PartRevision, on_delete=models.CASCADE, related_name="estimator"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField(blank=True)
    # catalog.estimator.GeometryEstimator.to_json(); null until fitted.
    fitted = models.JSONField(null=True, blank=True)
    samples = models.PositiveIntegerField(default=0, help_text="configurations measured")
    median_error = models.FloatField(
        null=True, blank=True, help_text="cross-validated relative volume error, median"
    )
    worst_error = models.FloatField(
        null=True, blank=True, help_text="cross-validated relative volume error, worst sample"
    )
    engine = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"estimator of {self.revision} ({self.status})"


class SearchSynonym(models.Model):
    """Phrases that mean the same in a catalog search, kept by the catalog admins: a search
    for any one of them finds what the others find (catalog.search)."""

    words = models.CharField(
        max_length=300,
        help_text="Comma-separated words or phrases that mean the same in a search: "
        "'M6, 6 mm thread, 6 mm' or '608, 8 mm bore bearing'",
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why they mean the same")

    class Meta:
        ordering = ["words"]

    def __str__(self) -> str:
        return self.words

    def clean(self) -> None:
        if len([p for p in self.words.split(",") if p.strip()]) < 2:
            raise ValidationError({"words": "Give at least two phrases, separated by commas."})

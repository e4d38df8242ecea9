"""What can be made: part families, their immutable revisions, and materials."""

import hashlib
import json

from django.conf import settings
from django.db import models


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
    description = models.TextField(blank=True)
    # Retired families are hidden from ordering but stay buildable for orders already placed.
    retired = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "part families"

    def __str__(self) -> str:
        return self.name

    def current_revision(self) -> "PartRevision | None":
        return self.revisions.filter(published_at__isnull=False).order_by("-number").first()


class PartRevision(models.Model):
    """One immutable version of a part's CadQuery script and parameter schema.

    Once published_at is set, script, schema and rules never change (catalog.services refuses
    it); orders point at the revision they were placed on, so a new revision never alters them.
    """

    family = models.ForeignKey(PartFamily, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    script = models.TextField(help_text="CadQuery script in cqgi form: parameters + show_object")
    parameter_schema = models.JSONField(default=list)
    rules = models.JSONField(default=list, blank=True)
    process = models.CharField(max_length=20, choices=Process.choices, default=Process.FDM)
    materials = models.ManyToManyField(Material, related_name="revisions")
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

    def compute_checksum(self) -> str:
        """sha256 over what determines the geometry: script, schema and rules."""
        payload = json.dumps(
            {"script": self.script, "schema": self.parameter_schema, "rules": self.rules},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

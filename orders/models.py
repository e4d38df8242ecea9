"""Who wants what: organisations, their members and roles, orders and order lines."""

from django.conf import settings
from django.db import models

from catalog.models import Material, PartRevision


class Organisation(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        REQUESTER = "requester"
        APPROVER = "approver"
        CATALOG_ADMIN = "catalog_admin", "catalog admin"
        OPERATOR = "operator"
        MANAGER = "manager"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REQUESTER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_membership_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.role})"


class OrderQuerySet(models.QuerySet["Order"]):
    def for_user(self, user: object) -> "OrderQuerySet":
        """Orders of the organisations the user belongs to: the only way views read orders."""
        return self.filter(organisation__memberships__user=user)


class Order(models.Model):
    class Priority(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"
        URGENT = "urgent"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="orders")
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    reference = models.CharField(max_length=100, blank=True, help_text="the customer's own ref")
    due_date = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    note = models.TextField(blank=True)
    # A retried POST with the same key returns the first order instead of placing a second.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    placed_at = models.DateTimeField(auto_now_add=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"], name="unique_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"O-{self.pk:06d}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # PROTECT: a revision an order was placed on can never be deleted from under it.
    revision = models.ForeignKey(PartRevision, on_delete=models.PROTECT, related_name="lines")
    parameters = models.JSONField(help_text="canonical parameter values")
    parameters_hash = models.CharField(max_length=64)
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="lines")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return f"{self.order.number} line {self.pk}: {self.quantity} x {self.revision}"

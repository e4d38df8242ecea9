from django.contrib import admin

from orders.models import (
    Membership,
    Order,
    OrderEvent,
    OrderLine,
    Organisation,
    Team,
    Webhook,
    WebhookDelivery,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "team"]
    extra = 0


class TeamInline(admin.TabularInline):
    model = Team
    prepopulated_fields = {"slug": ["name"]}
    extra = 0


class WebhookInline(admin.TabularInline):
    model = Webhook
    fields = ["url", "secret", "active"]
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_delivery_site"]
    list_select_related = ["default_delivery_site"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamInline, MembershipInline, WebhookInline]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "approval_threshold"]
    list_filter = ["organisation"]
    prepopulated_fields = {"slug": ["name"]}


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    readonly_fields = (
        "revision",
        "material",
        "quantity",
        "parameters",
        "status",
        "price",
        "reason",
    )
    fields = readonly_fields
    extra = 0
    can_delete = False


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    readonly_fields = ("at", "line", "from_status", "to_status", "actor_label", "reason")
    fields = readonly_fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-mostly: status changes go through the pages and the API (orders.services), so
    every one is checked and recorded."""

    list_display = [
        "number",
        "organisation",
        "status",
        "reference",
        "priority",
        "total_price",
        "due_date",
        "placed_at",
    ]
    list_filter = ["status", "organisation", "priority"]
    search_fields = ["reference", "note"]
    readonly_fields = [
        "organisation",
        "team",
        "placed_by",
        "status",
        "total_price",
        "currency",
        "decided_by",
        "decided_at",
        "reason",
        "idempotency_key",
        "request_fingerprint",
    ]
    inlines = [OrderLineInline, OrderEventInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: every attempt with its status code or error."""

    list_display = ["event", "webhook", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["status", "event", "webhook__organisation"]
    readonly_fields = [
        "webhook",
        "event",
        "payload",
        "status",
        "attempts",
        "log",
        "next_attempt_at",
        "created_at",
        "delivered_at",
    ]

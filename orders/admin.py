from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from microfactory.errors import DomainError
from orders.models import (
    Asset,
    AssetPart,
    CustomerUpload,
    Membership,
    Order,
    OrderEvent,
    OrderLine,
    Organisation,
    Team,
    Webhook,
    WebhookDelivery,
)
from orders.uploads import upload_promote
from production import public


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
    list_display = ["name", "organisation", "approval_threshold", "waive_approval_when_asset_down"]
    list_filter = ["organisation"]
    prepopulated_fields = {"slug": ["name"]}


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    readonly_fields = (
        "revision",
        "process",
        "material",
        "quantity",
        "parameters",
        "status",
        "price",
        "reason",
        "route_reason",
    )
    fields = readonly_fields
    extra = 0
    can_delete = False


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fk_name = "order"  # not source_order: a reorder's event names the order it repeats
    readonly_fields = (
        "at",
        "line",
        "from_status",
        "to_status",
        "actor_label",
        "reason",
        "source_order",
    )
    fields = readonly_fields
    extra = 0
    can_delete = False


class OrderCostChangeList(ChangeList):
    """The order list with each page's costs read in one batch (production.public), not a
    few queries per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        orders = list(self.result_list)
        costs = public.order_costs(order_ids=[o.pk for o in orders], now=timezone.now())
        for order in orders:
            order.cost_summary = costs.get(order.pk)


def _cost_of(order: Order) -> public.OrderCost | None:
    cost: public.OrderCost | None = getattr(order, "cost_summary", None)
    if cost is None:  # the order's own page: read once for its three fields
        cost = public.order_costs(order_ids=[order.pk], now=timezone.now()).get(order.pk)
        order.cost_summary = cost  # type: ignore[attr-defined]
    return cost


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-mostly: status changes go through the pages and the API (orders.services), so
    every one is checked and recorded. Cost and margin are production's figures, read-only
    (production.costing)."""

    list_display = [
        "number",
        "organisation",
        "status",
        "reference",
        "priority",
        "total_price",
        "cost",
        "margin",
        "due_date",
        "placed_at",
    ]
    list_filter = ["status", "organisation", "priority"]
    search_fields = ["reference", "note", "work_order_ref", "asset__tag"]
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
        "downtime_stake",
        "cost",
        "margin",
        "costs",
    ]
    inlines = [OrderLineInline, OrderEventInline]

    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type[ChangeList]:
        return OrderCostChangeList

    @admin.display(description="cost")
    def cost(self, order: Order) -> str:
        cost = _cost_of(order)
        return "-" if cost is None else f"{cost.cost} {cost.currency}"

    @admin.display(description="margin")
    def margin(self, order: Order) -> str:
        cost = _cost_of(order)
        if cost is None or cost.margin is None:
            return "-"
        return f"{cost.margin} {cost.currency} ({cost.margin_percent} %)"

    @admin.display(description="cost per job")
    def costs(self, order: Order) -> str:
        cost = _cost_of(order)
        if cost is None or not cost.jobs:
            return "no jobs"
        return "; ".join(
            f"{job.number}: {job.total} (material {job.material.amount}, machine "
            f"{job.machine.amount}, energy {job.energy.amount}, labour {job.labour.amount}"
            f"{', remakes ' + job.replaces if job.replaces else ''})"
            for job in cost.jobs
        )


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


class AssetPartInline(admin.TabularInline):
    """Spare parts are saved from the part and order pages, checked like order lines; here
    only their quantity and label change (an edited parameter would skip that check)."""

    model = AssetPart
    fields = ["revision", "parameters", "material", "quantity", "label", "added_by", "added_at"]
    readonly_fields = ["revision", "parameters", "material", "added_by", "added_at"]
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    """A team's equipment and its spare-parts list (orders.assets). The spare parts' parameters
    are saved canonical by the pages; edited here they are checked again when ordered."""

    list_display = [
        "tag",
        "name",
        "team",
        "location",
        "criticality",
        "downtime_cost_per_hour",
        "down_since",
    ]
    list_filter = ["criticality", "team__organisation", "team"]
    list_select_related = ["team__organisation"]
    search_fields = ["tag", "name", "location"]
    readonly_fields = ["created_at"]
    inlines = [AssetPartInline]


@admin.register(AssetPart)
class AssetPartAdmin(admin.ModelAdmin):
    list_display = ["asset", "revision", "material", "quantity", "label", "added_at"]
    list_select_related = ["asset", "revision__family", "material"]
    list_filter = ["asset__team__organisation"]
    search_fields = ["asset__tag", "asset__name", "label", "revision__family__name"]
    readonly_fields = [
        "asset",
        "revision",
        "parameters",
        "parameters_hash",
        "material",
        "added_by",
        "added_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(CustomerUpload)
class CustomerUploadAdmin(admin.ModelAdmin):
    """Customers' own models (orders.uploads), read-only; a catalog admin promotes one into
    the catalog (orders.uploads.upload_promote): a new part with a published static revision
    of the same file, named after the upload (rename or describe it in the catalog admin)."""

    list_display = [
        "number",
        "name",
        "organisation",
        "format",
        "size",
        "uploaded_by",
        "created_at",
        "catalog_part",
    ]
    list_filter = ["format", "organisation"]
    list_select_related = ["organisation", "uploaded_by", "promoted_to__family"]
    search_fields = ["name", "file_name"]
    readonly_fields = [
        "organisation",
        "uploaded_by",
        "name",
        "file_name",
        "format",
        "size",
        "triangles",
        "revision",
        "created_at",
        "promoted_to",
        "promoted_by",
        "promoted_at",
    ]
    actions = ["promote"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers upload on their pages or through the API

    def has_promote_permission(self, request: HttpRequest) -> bool:
        """Catalog admins: whoever may add parts to the catalog."""
        return request.user.has_perms(["catalog.add_partfamily", "catalog.add_partrevision"])

    @admin.display(description="in the catalog as")
    def catalog_part(self, upload: CustomerUpload) -> str:
        if upload.promoted_to is None:
            return "-"
        family = upload.promoted_to.family
        url = reverse("admin:catalog_partfamily_change", args=[family.pk])
        return format_html('<a href="{}">{}</a>', url, family.name)

    @admin.action(
        description="Promote to catalog (a static revision of the same file)",
        permissions=["promote"],
    )
    def promote(self, request: HttpRequest, uploads: QuerySet[CustomerUpload]) -> None:
        for upload in uploads:
            try:
                revision = upload_promote(upload=upload, user=request.user)
            except DomainError as refusal:
                self.message_user(request, f"{upload.number}: {refusal}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{upload.number} is in the catalog as '{revision.family.name}' "
                    f"({revision.label}); edit its category, tags and description there.",
                    messages.SUCCESS,
                )

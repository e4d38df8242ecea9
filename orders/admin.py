from django.contrib import admin

from orders.models import Membership, Order, OrderLine, Organisation


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["revision", "material", "quantity", "parameters"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "organisation", "reference", "priority", "due_date", "placed_at"]
    list_filter = ["organisation", "priority"]
    search_fields = ["reference", "note"]
    readonly_fields = ["organisation", "placed_by", "idempotency_key", "request_fingerprint"]
    inlines = [OrderLineInline]

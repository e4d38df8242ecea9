from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog.models import Material, PartFamily, PartRevision
from catalog.services import revision_publish
from microfactory.errors import DomainError


@admin.register(Material)
class MaterialAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "process", "density_g_cm3", "price_per_kg", "active"]
    prepopulated_fields = {"slug": ["name"]}


class RevisionInline(admin.TabularInline):
    model = PartRevision
    fields = ["number", "process", "checksum", "published_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PartFamily)
class PartFamilyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "category", "retired"]
    list_filter = ["category", "retired"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [RevisionInline]


@admin.register(PartRevision)
class PartRevisionAdmin(admin.ModelAdmin):
    list_display = ["family", "number", "process", "published_at", "published_by"]
    list_filter = ["process", "family"]
    readonly_fields = ["checksum", "created_by", "created_at", "published_at", "published_by"]
    actions = ["publish"]

    def get_readonly_fields(self, request: HttpRequest, obj: PartRevision | None = None):
        if obj is not None and obj.is_published:
            # Published revisions are frozen: orders point at exactly this script and schema.
            return [f.name for f in PartRevision._meta.fields] + ["materials"]
        return self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: PartRevision, form: object, change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user
            last = obj.family.revisions.order_by("-number").first()
            obj.number = obj.number or ((last.number + 1) if last else 1)
        obj.checksum = obj.compute_checksum()
        super().save_model(request, obj, form, change)

    @admin.action(description="Publish the selected draft revisions")
    def publish(self, request: HttpRequest, queryset: QuerySet[PartRevision]) -> None:
        for revision in queryset:
            try:
                revision_publish(revision=revision, published_by=request.user)
            except DomainError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"published {revision}")

from django.contrib import admin

from production.models import Artifact, Job, JobArtifact, JobEvent, Machine, Site


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "model", "process", "state", "connector", "last_seen_at"]
    list_filter = ["site", "process", "state"]
    filter_horizontal = ["materials_loaded"]


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ["step", "from_status", "to_status", "actor", "finished_at", "duration_ms", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class JobArtifactInline(admin.TabularInline):
    model = JobArtifact
    fields = ["kind", "artifact"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["number", "line", "quantity", "status", "machine", "status_changed_at"]
    list_filter = ["status", "machine"]
    readonly_fields = ["line", "quantity", "status", "reason", "machine", "dfm_report",
                       "toolpath_meta", "enqueued_at", "status_changed_at"]
    inlines = [JobEventInline, JobArtifactInline]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["kind", "input_key", "sha256", "size", "created_at"]
    list_filter = ["kind"]
    readonly_fields = ["kind", "input_key", "sha256", "file", "size", "meta"]

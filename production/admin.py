from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from microfactory.errors import DomainError
from production import costing, job_costs, lifecycle, spools
from production.machines import job_resume, machine_set_state
from production.models import (
    Artifact,
    Job,
    JobArtifact,
    JobEvent,
    Machine,
    MachineEvent,
    MachineFile,
    MachineTelemetry,
    PassportEntry,
    Plate,
    PlateCopy,
    Site,
    SiteClosure,
    SiteHours,
    Spool,
    SpoolBooking,
    TransitTime,
)


class SiteHoursInline(admin.TabularInline):
    """The site's week: jobs start only in these shifts (none: open around the clock)."""

    model = SiteHours
    extra = 0


class SiteClosureInline(admin.TabularInline):
    model = SiteClosure
    extra = 0


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "operator", "timezone"]
    list_select_related = ["operator"]
    inlines = [SiteHoursInline, SiteClosureInline]


@admin.register(TransitTime)
class TransitTimeAdmin(admin.ModelAdmin):
    """The network's transit table: one row a pair of sites (it holds both ways unless the
    other way has its own row); two sites with no row have no route between them."""

    list_display = ["from_site", "to_site", "hours"]
    list_editable = ["hours"]
    list_filter = ["from_site", "to_site"]
    list_select_related = ["from_site", "to_site"]


class MachineEventInline(admin.TabularInline):
    model = MachineEvent
    readonly_fields = ("at", "from_state", "to_state", "actor", "reason")
    fields = readonly_fields
    extra = 0
    can_delete = False
    ordering = ["-at", "-pk"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MachineFileInline(admin.TabularInline):
    """Files we sent to the machine and have not deleted there yet (the poller does, once
    their jobs are over): what to delete by hand if the machine is retired."""

    model = MachineFile
    verbose_name_plural = "files sent, not yet removed"
    readonly_fields = ("filename", "job", "sent_at", "failed_removals", "last_error")
    fields = readonly_fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "model", "process", "state", "connector", "last_seen_at"]
    list_filter = ["site", "process", "state"]
    filter_horizontal = ["materials_loaded", "materials_loadable"]
    # State changes go through the actions (machine_set_state), which re-route jobs; the rest
    # is what the machine reports. The telemetry token: manage.py machine_token SLUG.
    readonly_fields = [
        "state",
        "state_changed_at",
        "last_seen_at",
        "progress",
        "temperatures",
        "error_text",
        "current_job",
        "has_token",
    ]
    exclude = ["token_hash"]
    inlines = [MachineFileInline, MachineEventInline]
    actions = ["put_in_maintenance", "bring_back"]

    @admin.display(boolean=True, description="telemetry token")
    def has_token(self, machine: Machine) -> bool:
        return bool(machine.token_hash)

    def save_model(self, request: HttpRequest, obj: Machine, form: Any, change: bool) -> None:
        moved_from = form.initial.get("site") if change and "site" in form.changed_data else None
        super().save_model(request, obj, form, change)
        if moved_from is not None:
            # Its jobs' events now count at the new site (the dashboard's kept stage days).
            lifecycle.jobs_changed_site(
                jobs=Job.objects.filter(machine=obj),
                site_ids=(moved_from, obj.site_id),
                now=timezone.now(),
            )

    def _set_state(self, request: HttpRequest, queryset: QuerySet[Machine], state: str) -> None:
        for machine in queryset:
            machine_set_state(
                machine_id=machine.pk,
                state=state,
                now=timezone.now(),
                actor=request.user.get_username(),
                reason=f"set to {state} in the admin",
            )
        self.message_user(request, f"{queryset.count()} machine(s) set to {state}")

    @admin.action(description="Put in maintenance (its jobs are routed elsewhere)")
    def put_in_maintenance(self, request: HttpRequest, queryset: QuerySet[Machine]) -> None:
        self._set_state(request, queryset, Machine.State.MAINTENANCE)

    @admin.action(description="Bring back into service (idle)")
    def bring_back(self, request: HttpRequest, queryset: QuerySet[Machine]) -> None:
        self._set_state(request, queryset, Machine.State.IDLE)


@admin.register(MachineTelemetry)
class MachineTelemetryAdmin(admin.ModelAdmin):
    list_display = ["machine", "recorded_at", "state", "progress", "job"]
    list_filter = ["machine", "state"]
    readonly_fields = [
        "machine",
        "recorded_at",
        "state",
        "progress",
        "temperatures",
        "job",
        "error_text",
    ]


class JobEventInline(admin.TabularInline):
    model = JobEvent
    readonly_fields = (
        "step",
        "from_status",
        "to_status",
        "actor",
        "finished_at",
        "duration_ms",
        "message",
    )
    fields = readonly_fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # events are written by production.lifecycle only


class JobArtifactInline(admin.TabularInline):
    model = JobArtifact
    readonly_fields = ("kind", "artifact")
    fields = readonly_fields
    extra = 0
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "line",
        "quantity",
        "status",
        "machine",
        "status_changed_at",
        "cost",
    ]
    list_filter = ["status", "machine"]
    readonly_fields = [
        "cost",
        "cost_detail",
        "line",
        "quantity",
        "status",
        "reason",
        "machine",
        "route_reason",
        "dfm_report",
        "toolpath_meta",
        "enqueued_at",
        "enqueued_task_id",
        "status_changed_at",
        "replaces",
        "started_at",
        "finished_at",
        "progress",
        # QC is recorded at the station, as events: the admin shows it and cannot change it.
        "qc_passed",
        "qc_scrapped",
        "measurements",
    ]
    inlines = [JobEventInline, JobArtifactInline]
    actions = ["resume"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        # The cost column reads the machine, material and events: joined and prefetched once
        # per page, not per row.
        # The line's label reads its order and revision: joined too (the changelist adds no
        # list_select_related to a queryset that already joins).
        return job_costs.with_cost_facts(super().get_queryset(request)).select_related(
            "line__order", "line__revision__family"
        )

    def _cost(self, job: Job) -> costing.JobCost:
        return costing.job_cost(
            job_costs.job_facts(job), rates=job_costs.cost_rates(), now=timezone.now()
        )

    @admin.display(description="cost")
    def cost(self, job: Job) -> str:
        cost = self._cost(job)
        return f"{cost.total} {cost.currency} ({cost.basis})"

    @admin.display(description="cost per part")
    def cost_detail(self, job: Job) -> str:
        cost = self._cost(job)
        return "; ".join(
            f"{name} {item.amount}: {item.inputs}"
            for name, item in (
                ("material", cost.material),
                ("machine", cost.machine),
                ("energy", cost.energy),
                ("labour", cost.labour),
            )
        )

    @admin.action(description="Resume: the part was fine after all (withdraws the replacement)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            try:
                job_resume(job_id=job.pk, now=timezone.now(), actor=request.user.get_username())
            except DomainError as refusal:
                self.message_user(request, f"{job.number}: {refusal}", level=messages.ERROR)
            else:
                self.message_user(request, f"{job.number} goes to QC")


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["kind", "input_key", "sha256", "size", "created_at"]
    list_filter = ["kind"]
    readonly_fields = ["kind", "input_key", "sha256", "file", "size", "meta"]


class SpoolBookingInline(admin.TabularInline):
    """Every gram the spool gave (production.spools writes them): read-only."""

    model = SpoolBooking
    readonly_fields = ("at", "job", "kind", "grams", "by", "note")
    fields = readonly_fields
    extra = 0
    can_delete = False
    ordering = ["-at", "-pk"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Spool)
class SpoolAdmin(admin.ModelAdmin):
    """Spools are received here (full: remaining = initial); their grams then change only by
    bookings, and loading happens at the station (scan) or with the actions below."""

    list_display = [
        "number",
        "material",
        "colour",
        "lot_number",
        "site",
        "remaining_g",
        "initial_g",
        "loaded_on",
    ]
    list_filter = ["site", "material"]
    list_select_related = ["material", "site", "loaded_on"]
    search_fields = ["lot_number", "colour"]
    readonly_fields = ["remaining_g", "loaded_on", "loaded_at", "created_at", "updated_at"]
    inlines = [SpoolBookingInline]
    actions = ["take_off"]

    # What can still change once a spool is received: its material and initial grams are
    # what every booking is counted against; its site moves only while it is not loaded.
    EDITABLE = ("colour", "lot_number", "price_per_kg", "site")

    def get_readonly_fields(self, request: HttpRequest, obj: Spool | None = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is None:
            return fields
        fields += ["material", "initial_g"]
        return [*fields, "site"] if obj.loaded_on_id is not None else fields

    def save_model(self, request: HttpRequest, obj: Spool, form: object, change: bool) -> None:
        if change:
            # Only the editable columns: a booking may have changed remaining_g since the
            # form was read, and saving the whole row would undo it.
            obj.save(update_fields=list(self.EDITABLE))
            return
        received = spools.spool_receive(
            material=obj.material,
            site=obj.site,
            lot_number=obj.lot_number,
            initial_g=obj.initial_g,
            colour=obj.colour,
            price_per_kg=obj.price_per_kg,
        )
        obj.pk, obj.remaining_g = received.pk, received.remaining_g

    @admin.action(description="Take off its machine")
    def take_off(self, request: HttpRequest, queryset: QuerySet[Spool]) -> None:
        for spool in queryset:
            try:
                spools.spool_unload(
                    spool_id=spool.pk, actor=request.user.get_username(), now=timezone.now()
                )
            except DomainError as refusal:
                self.message_user(request, str(refusal), level=messages.ERROR)
            else:
                self.message_user(request, f"{spool.number} taken off")


@admin.register(PassportEntry)
class PassportEntryAdmin(admin.ModelAdmin):
    """Read-only: entries are appended by production.passport and signed; an edit here would
    only break the chain (the station and the passport page would show it)."""

    list_display = ["job", "seq", "kind", "name", "sha256", "created_at"]
    list_filter = ["kind"]
    search_fields = ["sha256", "chain_hash"]
    list_select_related = ["job"]
    readonly_fields = [
        "job",
        "seq",
        "kind",
        "name",
        "sha256",
        "prev_chain_hash",
        "chain_hash",
        "public_key",
        "signature",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- plates (#13): listed with their jobs, G-code and traveler; read-only (the worker plans
# them, the router routes them, the station runs them) ------------------------------------


class PlateCopyInline(admin.TabularInline):
    model = PlateCopy
    fk_name = "plate"
    extra = 0
    can_delete = False
    fields = _COPY_FIELDS = (
        "number", "job", "copy_index", "x_mm", "y_mm", "rotation_deg", "qc", "qc_reason",
        "measurements", "remake",
    )  # fmt: skip
    readonly_fields = _COPY_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Plate)
class PlateAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "status",
        "machine",
        "material",
        "copy_count",
        "job_numbers",
        "estimated_time_s",
        "gcode_link",
        "traveler_link",
        "labels_link",
        "created_at",
    ]
    list_filter = ["status", "material"]
    list_select_related = ["machine", "material", "gcode", "traveler", "labels"]
    search_fields = ["copies__job__id"]
    inlines = [PlateCopyInline]
    readonly_fields = [
        f.name for f in Plate._meta.get_fields() if f.concrete and not f.auto_created
    ] + ["gcode_link", "traveler_link", "labels_link"]
    exclude = ["map_svg"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Plate]:
        return super().get_queryset(request).prefetch_related("copies__job")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="copies")
    def copy_count(self, plate: Plate) -> int:
        return len(plate.copies.all())

    @admin.display(description="jobs")
    def job_numbers(self, plate: Plate) -> str:
        return ", ".join(sorted({copy.job.number for copy in plate.copies.all()}))

    @admin.display(description="G-code")
    def gcode_link(self, plate: Plate) -> str:
        return _file_link(plate.gcode, "station-plate-gcode", plate, f"{plate.number}.gcode")

    @admin.display(description="traveler")
    def traveler_link(self, plate: Plate) -> str:
        return _file_link(
            plate.traveler, "station-plate-traveler", plate, f"traveler-{plate.number}.pdf"
        )

    @admin.display(description="bag labels")
    def labels_link(self, plate: Plate) -> str:
        return _file_link(plate.labels, "station-plate-labels", plate, f"labels-{plate.number}.pdf")


def _file_link(artifact: Artifact | None, view: str, plate: Plate, label: str) -> str:
    """Artifacts are not public media: the station's download (staff are operators there)."""
    if artifact is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse(view, args=[plate.pk]), label)

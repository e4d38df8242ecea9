"""The catalog admin: part families, materials, and revisions from upload to publication.

A catalog admin uploads a CadQuery script (or types it) or a static STEP/STL model, sees
the parameters the script declares next to the schema, builds it with its defaults in the
sandbox (the SVG drawing or the script's error shows at once), sets ranges, materials,
process, work instructions and QC checks, and publishes. Published revisions are read-only.
Every write goes through catalog.services.
"""

import base64
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from catalog import geometry
from catalog.models import (
    Material,
    PartFamily,
    PartPreview,
    PartRevision,
    RevisionEstimator,
    SearchSynonym,
    alternative_processes_problem,
)
from catalog.parameters import SchemaError, defaults, parse_schema
from catalog.previews import build_limits, revision_build
from catalog.scripts import declared_parameters, schema_mismatches, starter_schema
from catalog.services import (
    RevisionContent,
    model_read,
    revision_check,
    revision_create,
    revision_estimator_queue,
    revision_publish,
    revision_update,
)
from microfactory.errors import DomainError, Rejected

SCRIPT_UPLOAD_MAX_BYTES = 1024 * 1024


@admin.register(SearchSynonym)
class SearchSynonymAdmin(admin.ModelAdmin):
    """Synonyms of the catalog search: 'M6, 6 mm thread, 6 mm' makes each find the others."""

    list_display = ["words", "note"]
    search_fields = ["words", "note"]

    def save_model(self, request: HttpRequest, obj: SearchSynonym, form: Any, change: bool) -> None:
        obj.words = ", ".join(p.strip() for p in obj.words.split(",") if p.strip())
        super().save_model(request, obj, form, change)


@admin.register(Material)
class MaterialAdmin(admin.ModelAdmin):
    list_display = [
        "name", "slug", "process", "density_g_cm3", "price_per_kg", "sheet_thicknesses_mm",
        "active",
    ]  # fmt: skip
    prepopulated_fields = {"slug": ["name"]}


class RevisionInline(admin.TabularInline):
    model = PartRevision
    readonly_fields = ("number", "kind", "process", "checksum", "published_at")
    fields = readonly_fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PartFamily)
class PartFamilyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "category", "tags", "retired"]
    list_filter = ["category", "retired"]
    search_fields = ["name", "slug", "description", "tags"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [RevisionInline]


class RevisionForm(forms.ModelForm):
    script_upload = forms.FileField(
        required=False,
        help_text="A .py file: its text replaces the script above.",
    )

    class Meta:
        model = PartRevision
        fields = [
            "family",
            "kind",
            "script",
            "script_upload",
            "model_file",
            "parameter_schema",
            "rules",
            "process",
            "alternative_processes",
            "materials",
            "description",
            "work_instructions",
            "qc_checks",
        ]
        widgets = {
            "script": forms.Textarea(
                attrs={
                    "rows": 24,
                    "cols": 100,
                    "class": "vLargeTextField script-field",  # monospace: admin.css
                }
            )
        }

    def clean_script_upload(self) -> str | None:
        upload: UploadedFile | None = self.cleaned_data.get("script_upload")
        if not upload:
            return None
        if upload.size is not None and upload.size > SCRIPT_UPLOAD_MAX_BYTES:
            raise forms.ValidationError("the script is over 1 MB")
        try:
            text: str = upload.read().decode("utf-8")  # UploadedFile is File[Any] in the stubs
            return text
        except UnicodeDecodeError:
            raise forms.ValidationError("the script is not UTF-8 text") from None

    def clean_model_file(self) -> Any:
        upload = self.cleaned_data.get("model_file")
        if isinstance(upload, UploadedFile):
            try:
                model_read(upload)
            except DomainError as error:
                raise forms.ValidationError(str(error)) from None
        return upload

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean() returns
        if data.get("script_upload"):
            data["script"] = data["script_upload"]
        kind = data.get("kind") or PartRevision.Kind.SCRIPT
        script = data.get("script") or ""
        if kind == PartRevision.Kind.SCRIPT and script and not data.get("parameter_schema"):
            # A new script without a schema: offer what it declares; the admin sets ranges.
            data["parameter_schema"] = starter_schema(declared_parameters(script))
        problem = alternative_processes_problem(
            data.get("process") or "", data.get("alternative_processes") or []
        )
        if problem is not None:
            self.add_error("alternative_processes", problem)
        if self.errors:
            return data
        upload = data.get("model_file")
        try:
            revision_check(
                RevisionContent(
                    kind=kind,
                    script=script,
                    parameter_schema=data.get("parameter_schema") or [],
                    rules=data.get("rules") or [],
                    qc_checks=data.get("qc_checks") or [],
                    work_instructions=data.get("work_instructions") or [],
                ),
                has_model=bool(upload) or bool(self.instance.model_sha256 and upload is not False),
            )
        except DomainError as error:
            raise forms.ValidationError(str(error)) from None
        return data


@admin.register(PartRevision)
class PartRevisionAdmin(admin.ModelAdmin):
    form = RevisionForm
    list_display = ["family", "number", "kind", "process", "published_at", "published_by"]
    list_filter = ["kind", "process", "family"]
    list_select_related = ["family", "published_by"]
    readonly_fields = [
        "declared_parameters",
        "model_summary",
        "checksum",
        "created_by",
        "created_at",
        "published_at",
        "published_by",
    ]
    actions = ["publish", "build_with_defaults"]
    change_form_template = "admin/catalog/partrevision/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "family",
                    "kind",
                    "process",
                    "alternative_processes",
                    "materials",
                    "description",
                ]
            },
        ),
        ("Script", {"fields": ["script", "script_upload", "declared_parameters"]}),
        ("Static model", {"fields": ["model_file", "model_summary"]}),
        ("Parameters", {"fields": ["parameter_schema", "rules"]}),
        ("Shop floor", {"fields": ["work_instructions", "qc_checks"]}),
        (
            "Record",
            {"fields": ["checksum", "created_by", "created_at", "published_at", "published_by"]},
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: PartRevision | None = None) -> Any:
        if obj is not None and obj.is_published:
            # Published revisions are frozen: orders point at exactly this script and schema.
            return [
                "family", "kind", "script", "model_file", "parameter_schema", "rules", "process",
                "alternative_processes", "materials", "description", "work_instructions",
                "qc_checks", *self.readonly_fields,
            ]  # fmt: skip
        return self.readonly_fields

    def get_fieldsets(self, request: HttpRequest, obj: PartRevision | None = None) -> Any:
        if obj is not None and obj.is_published:
            return [
                (name, {"fields": [f for f in options["fields"] if f != "script_upload"]})
                for name, options in self.fieldsets
            ]
        return self.fieldsets

    def has_delete_permission(self, request: HttpRequest, obj: PartRevision | None = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_delete_permission(request, obj)

    @admin.display(description="Parameters the script declares")
    def declared_parameters(self, revision: PartRevision) -> str:
        declared = declared_parameters(revision.script or "")
        if not declared:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            ((name, repr(value)) for name, value in declared.items()),
        )
        problems = schema_mismatches(declared, revision.parameter_schema or [])
        notes = format_html_join("", '<li class="mismatch">{}</li>', ((p,) for p in problems))
        return format_html("<table>{}</table><ul>{}</ul>", rows, notes)

    @admin.display(description="Model")
    def model_summary(self, revision: PartRevision) -> str:
        if not revision.model_sha256:
            return "—"
        return f"{revision.model_format.upper()}, sha256 {revision.model_sha256[:16]}…"

    def save_model(self, request: HttpRequest, obj: PartRevision, form: Any, change: bool) -> None:
        data = form.cleaned_data
        upload = data.get("model_file") if "model_file" in form.changed_data else None
        upload = upload if isinstance(upload, UploadedFile) else None
        if change:
            revision = revision_update(revision=obj, model_file=upload, materials=data["materials"])
        else:
            revision = revision_create(
                family=data["family"],
                kind=data["kind"],
                script=data.get("script") or "",
                parameter_schema=data.get("parameter_schema") or [],
                rules=data.get("rules") or [],
                process=data["process"],
                alternative_processes=data.get("alternative_processes") or [],
                materials=list(data["materials"]),
                model_file=upload,
                description=data.get("description") or "",
                work_instructions=data.get("work_instructions") or [],
                qc_checks=data.get("qc_checks") or [],
                created_by=request.user,
            )
        obj.pk, obj.number = revision.pk, revision.number

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Materials were set by the service with the revision itself."""

    @admin.action(description="Publish the selected draft revisions")
    def publish(self, request: HttpRequest, queryset: QuerySet[PartRevision]) -> None:
        for revision in queryset:
            try:
                revision_publish(revision=revision, published_by=request.user)
            except DomainError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"published {revision}")

    @admin.action(description="Build with the defaults (sandboxed, shows the drawing)")
    def build_with_defaults(
        self, request: HttpRequest, queryset: QuerySet[PartRevision]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "choose exactly one revision to build", messages.WARNING)
            return None
        return self._build_page(request, queryset.get())

    # --- the build page --------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        build = path(
            "<path:object_id>/build/",
            self.admin_site.admin_view(self.build_view),
            name="catalog_partrevision_build",
        )
        return [build, *super().get_urls()]

    def build_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        revision = get_object_or_404(PartRevision.objects.select_related("family"), pk=object_id)
        if not self.has_view_or_change_permission(request, revision):
            raise PermissionDenied
        if request.method != "POST":
            return TemplateResponse(
                request,
                "admin/catalog/partrevision/build.html",
                {**self.admin_site.each_context(request), "revision": revision, "ran": False,
                 "opts": self.model._meta, "title": f"Build {revision}"},
            )  # fmt: skip
        return self._build_page(request, revision)

    def _build_page(self, request: HttpRequest, revision: PartRevision) -> HttpResponse:
        """Run the sandboxed build now, with a short timeout, and show what came out."""
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "revision": revision,
            "ran": True,
            "title": f"Build {revision}",
            "change_url": reverse("admin:catalog_partrevision_change", args=[revision.pk]),
        }
        try:
            values = defaults(parse_schema(revision.parameter_schema))
            context["parameters"] = values
            built = revision_build(
                revision=revision,
                parameters=values,
                limits=build_limits(timeout_s=settings.CATALOG_ADMIN_BUILD_TIMEOUT_S),
            )
        except SchemaError as error:
            context["error"] = f"the parameter schema is invalid: {error}"
        except Rejected as refusal:
            context["error"] = str(refusal)
        except geometry.BuildFailed as failure:
            context["error"] = f"the build did not finish: {failure}"
        else:
            # As an <img>: an SVG shown this way cannot run scripts in the admin's page.
            context["drawing"] = (
                "data:image/svg+xml;base64," + base64.b64encode(built.svg.encode()).decode()
            )
            context["built"] = built
        return TemplateResponse(request, "admin/catalog/partrevision/build.html", context)


@admin.register(PartPreview)
class PartPreviewAdmin(admin.ModelAdmin):
    list_display = ["key", "revision", "status", "requested_by", "queued_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["revision__family", "requested_by"]
    readonly_fields = [f.name for f in PartPreview._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RevisionEstimator)
class RevisionEstimatorAdmin(admin.ModelAdmin):
    """The geometry estimators fitted at publish (catalog.estimator): read-only, with how well
    each predicts its own samples; `fit again` queues a new fit."""

    list_display = [
        "revision",
        "status",
        "samples",
        "median_error",
        "worst_error",
        "queued_at",
        "finished_at",
    ]
    list_filter = ["status"]
    list_select_related = ["revision__family"]
    readonly_fields = [f.name for f in RevisionEstimator._meta.fields]
    actions = ["fit_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Fit the selected estimators again")
    def fit_again(self, request: HttpRequest, queryset: QuerySet[RevisionEstimator]) -> None:
        for fit in queryset.select_related("revision"):
            with transaction.atomic():
                revision_estimator_queue(revision=fit.revision, now=timezone.now())
        self.message_user(request, f"queued {queryset.count()} fit(s)")

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from catalog.api.views import (
    PartDetailApi,
    PartPreviewsApi,
    PartsApi,
    PartValidateApi,
    PreviewDetailApi,
    PreviewFileApi,
)
from microfactory.devmail import dev_mail
from microfactory.views import ApiRoot, healthz
from production.api.costs import JobCostApi
from production.api.machines import MachineDetailApi, MachinesApi, MachineTelemetryApi
from production.api.previews import PreviewDfmApi
from production.api.views import JobArtifactApi, JobPassportApi
from production.dashboards import api as dashboard_api

api: tuple[list[URLPattern | URLResolver], str] = (
    [
        path("", ApiRoot.as_view(), name="root"),
        path("parts/", PartsApi.as_view(), name="parts"),
        path("parts/<slug:slug>/", PartDetailApi.as_view(), name="part-detail"),
        path("parts/<slug:slug>/validate/", PartValidateApi.as_view(), name="part-validate"),
        path("parts/<slug:slug>/previews/", PartPreviewsApi.as_view(), name="part-previews"),
        path("previews/<str:key>/", PreviewDetailApi.as_view(), name="preview-detail"),
        # Before the file route, which would take "dfm" for a file kind.
        path("previews/<str:key>/dfm/", PreviewDfmApi.as_view(), name="preview-dfm"),
        path("previews/<str:key>/<str:kind>/", PreviewFileApi.as_view(), name="preview-file"),
        path("", include("orders.api.urls")),  # orders, order actions, jobs, quotes
        path(
            "jobs/<id:job_id>/artifacts/<str:kind>/", JobArtifactApi.as_view(), name="job-artifact"
        ),
        path("jobs/<id:job_id>/passport/", JobPassportApi.as_view(), name="job-passport"),
        path("jobs/<id:job_id>/cost/", JobCostApi.as_view(), name="job-cost"),
        path("machines/", MachinesApi.as_view(), name="machines"),
        path("machines/<slug:slug>/", MachineDetailApi.as_view(), name="machine-detail"),
        path(
            "machines/<slug:slug>/telemetry/",
            MachineTelemetryApi.as_view(),
            name="machine-telemetry",
        ),
        # The manager dashboard's figures (production.dashboards, #15.2).
        path("dashboard/", dashboard_api.DashboardApi.as_view(), name="dashboard"),
        path(
            "dashboard/stages/", dashboard_api.DashboardStagesApi.as_view(), name="dashboard-stages"
        ),
        path("dashboard/oee/", dashboard_api.DashboardOeeApi.as_view(), name="dashboard-oee"),
        path("dashboard/scrap/", dashboard_api.DashboardScrapApi.as_view(), name="dashboard-scrap"),
        path(
            "dashboard/lead-times/",
            dashboard_api.DashboardLeadTimesApi.as_view(),
            name="dashboard-lead-times",
        ),
        path(
            "dashboard/promises/",
            dashboard_api.DashboardPromisesApi.as_view(),
            name="dashboard-promises",
        ),
        path(
            "dashboard/throughput/",
            dashboard_api.DashboardThroughputApi.as_view(),
            name="dashboard-throughput",
        ),
        path("schema/", SpectacularAPIView.as_view(), name="schema"),
    ],
    "api",
)

# A path under /api/ that no route matches is a JSON 404, as the API's own 404s are.
handler404 = "microfactory.views.page_not_found"

urlpatterns = [
    path("healthz", healthz, name="healthz"),  # liveness; the web benchmark's ceiling
    path("admin/", admin.site.urls),
    path("api/v1/", include(api)),
    # Swagger UI for the API; its files come from drf-spectacular-sidecar (no CDN), its inline
    # init script carries the page's CSP nonce (our template).
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="api:schema", template_name="microfactory/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("account/", include("microfactory.accounts.urls")),  # API tokens, second factor
    # The mail the site sent, kept by the DEBUG mail backend; 404 without DEBUG (devmail).
    path("dev/mail/", dev_mail, name="dev-mail"),
    path("", include("orders.urls")),
    path("", include("production.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static
    from django.http import HttpRequest, HttpResponseBase
    from django.views.static import serve

    from microfactory.downloads import file_sandboxed

    def serve_media(request: HttpRequest, path: str, document_root: str) -> HttpResponseBase:
        """Stored files as the views serve them: sandboxed (drawings, artifacts...)."""
        return file_sandboxed(serve(request, path, document_root=document_root))

    urlpatterns += static(settings.MEDIA_URL, serve_media, document_root=settings.MEDIA_ROOT)

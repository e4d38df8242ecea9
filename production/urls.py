from django.urls import path

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from production import (
    failmap_views,
    floor_views,
    passport_views,
    plate_views,
    views,
    whatif_views,
)
from production.dashboards import views as dashboard_views

urlpatterns = [
    path("station/", views.station_home, name="station"),
    path("station/scan/", views.station_scan, name="station-scan"),
    # The manager dashboard (production.dashboards, #15.2).
    path("station/dashboard/", dashboard_views.dashboard_page, name="station-dashboard"),
    path("station/machines/<slug:slug>/", views.station_machine, name="station-machine"),
    path(
        "station/machines/<slug:slug>/travelers.pdf",
        views.station_machine_travelers,
        name="station-machine-travelers",
    ),
    path(
        "station/machines/<slug:slug>/labels.pdf",
        views.station_machine_labels,
        name="station-machine-labels",
    ),
    path(
        "station/sites/<slug:slug>/spools/",
        views.station_site_spools,
        name="station-site-spools",
    ),
    path("station/spools/<id:spool_id>/", views.station_spool, name="station-spool"),
    path(
        "station/spools/<id:spool_id>/label.pdf",
        views.station_spool_label,
        name="station-spool-label",
    ),
    path(
        "station/spools/<id:spool_id>/<slug:action>/",
        views.station_spool_action,
        name="station-spool-action",
    ),
    path("station/jobs/<id:job_id>/", views.station_job, name="station-job"),
    path("station/jobs/<id:job_id>/label.pdf", views.station_job_label, name="station-job-label"),
    path(
        "station/jobs/<id:job_id>/traveler.pdf",
        views.station_job_traveler,
        name="station-job-traveler",
    ),
    path(
        "station/orders/<id:order_id>/costs/",
        views.station_order_costs,
        name="station-order-costs",
    ),
    # Plates (#13): opened by scanning their traveler, run and QC'd copy by copy.
    path("station/plates/<id:plate_id>/", plate_views.station_plate, name="station-plate"),
    path(
        "station/plates/<id:plate_id>/traveler.pdf",
        plate_views.station_plate_traveler,
        name="station-plate-traveler",
    ),
    path(
        "station/plates/<id:plate_id>/plate.gcode",
        plate_views.station_plate_gcode,
        name="station-plate-gcode",
    ),
    path(
        "station/plates/<id:plate_id>/labels.pdf",
        plate_views.station_plate_labels,
        name="station-plate-labels",
    ),
    path(
        "station/plates/<id:plate_id>/<slug:action>/",
        plate_views.station_plate_action,
        name="station-plate-action",
    ),
    # Issue #15.4: what-if capacity (managers).
    path("station/what-if/", whatif_views.station_whatif, name="station-whatif"),
    # The live floor view (production.floor): all the user's sites, one site, the part htmx
    # refreshes, the move of a waiting job; where a login lands.
    path("station/floor/", floor_views.floor_page, name="floor"),
    path("station/floor/<slug:slug>/", floor_views.floor_page, name="floor-site"),
    path("station/floor-live/", floor_views.floor_live, name="floor-live"),
    path("station/floor-live/<slug:slug>/", floor_views.floor_live, name="floor-site-live"),
    path("station/floor/jobs/<id:job_id>/move/", floor_views.floor_move, name="floor-move"),
    path(
        "station/floor/plates/<id:plate_id>/move/",
        floor_views.floor_plate_move,
        name="floor-plate-move",
    ),
    path("welcome/", floor_views.after_login, name="after-login"),
    path("passport/<id:job_id>/<str:token>/", passport_views.passport_page, name="passport"),
    path(
        "passport/<id:job_id>/<str:token>/copies/<id:copy>/",
        passport_views.passport_page,
        name="passport-copy",
    ),
    path(
        "station/jobs/<id:job_id>/<slug:action>/",
        views.station_job_action,
        name="station-job-action",
    ),
    # Issue #15 point 6: where a revision's parts fail, for catalog admins (admin site pages).
    path(
        "failures/revisions/<id:revision_id>/",
        failmap_views.revision_failures_view,
        name="revision-failures",
    ),
    path(
        "failures/revisions/<id:revision_id>/narrow/",
        failmap_views.revision_narrow_view,
        name="revision-narrow",
    ),
]

from django.urls import path

from production import views

urlpatterns = [
    path("station/jobs/<int:job_id>/", views.station_job, name="station-job"),
]

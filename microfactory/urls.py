from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from catalog.api.views import PartsApi
from orders.api.views import OrderDetailApi, OrdersApi
from microfactory.views import ApiRoot
from production.api.views import JobArtifactApi

api = (
    [
        path("", ApiRoot.as_view(), name="root"),
        path("parts/", PartsApi.as_view(), name="parts"),
        path("orders/", OrdersApi.as_view(), name="orders"),
        path("orders/<int:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
        path("jobs/<int:job_id>/artifacts/<str:kind>/", JobArtifactApi.as_view(), name="job-artifact"),
        path("schema/", SpectacularAPIView.as_view(), name="schema"),
    ],
    "api",
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api)),
    path("", include("orders.urls")),
    path("", include("production.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

"""The order API's paths, included in the project's `api` namespace (microfactory/urls.py)."""

from django.urls import path

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from orders.api import uploads, views

urlpatterns = [
    path("orders/", views.OrdersApi.as_view(), name="orders"),
    path("orders/<id:order_id>/", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<id:order_id>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<id:order_id>/approve/", views.OrderApproveApi.as_view(), name="order-approve"),
    path("orders/<id:order_id>/reject/", views.OrderRejectApi.as_view(), name="order-reject"),
    path(
        "orders/<id:order_id>/confirm-price/",
        views.OrderPriceConfirmApi.as_view(),
        name="order-confirm-price",
    ),
    path(
        "orders/<id:order_id>/decline-price/",
        views.OrderPriceDeclineApi.as_view(),
        name="order-decline-price",
    ),
    path("jobs/<id:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
    path("quotes/", views.QuoteApi.as_view(), name="quote"),
    # Customers' own models (orders.uploads).
    path("uploads/", uploads.UploadsApi.as_view(), name="uploads"),
    path("uploads/<id:upload_id>/", uploads.UploadDetailApi.as_view(), name="upload-detail"),
    path("uploads/<id:upload_id>/quote/", uploads.UploadQuoteApi.as_view(), name="upload-quote"),
]

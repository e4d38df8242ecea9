"""The order API's paths, included in the project's `api` namespace (microfactory/urls.py)."""

from django.urls import path

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from orders.api import assets, reorders, saved_quotes, uploads, views

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
    path(
        "orders/<id:order_id>/lines/<id:line_id>/route/",
        views.OrderLineRouteApi.as_view(),
        name="order-line-route",
    ),
    path("orders/<id:order_id>/reorder/", reorders.OrderReorderApi.as_view(), name="order-reorder"),
    path("jobs/<id:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
    path("quotes/", views.QuoteApi.as_view(), name="quote"),
    path("assets/", assets.AssetsApi.as_view(), name="assets"),
    path("assets/<id:asset_id>/", assets.AssetDetailApi.as_view(), name="asset-detail"),
    # Saved quotes: prices held until a validity date (orders.api.saved_quotes).
    path("saved-quotes/", saved_quotes.SavedQuotesApi.as_view(), name="saved-quotes"),
    path(
        "saved-quotes/<id:quote_id>/",
        saved_quotes.SavedQuoteDetailApi.as_view(),
        name="saved-quote-detail",
    ),
    path(
        "saved-quotes/<id:quote_id>/pdf/",
        saved_quotes.SavedQuotePdfApi.as_view(),
        name="saved-quote-pdf",
    ),
    path(
        "saved-quotes/<id:quote_id>/share/",
        saved_quotes.SavedQuoteShareApi.as_view(),
        name="saved-quote-share",
    ),
    path(
        "saved-quotes/<id:quote_id>/requote/",
        saved_quotes.SavedQuoteRequoteApi.as_view(),
        name="saved-quote-requote",
    ),
    path(
        "saved-quotes/<id:quote_id>/order/",
        saved_quotes.SavedQuoteOrderApi.as_view(),
        name="saved-quote-order",
    ),
    # Customers' own models (orders.uploads).
    path("uploads/", uploads.UploadsApi.as_view(), name="uploads"),
    path("uploads/<id:upload_id>/", uploads.UploadDetailApi.as_view(), name="upload-detail"),
    path("uploads/<id:upload_id>/quote/", uploads.UploadQuoteApi.as_view(), name="upload-quote"),
    path("uploads/<id:upload_id>/scale/", uploads.UploadScaleApi.as_view(), name="upload-scale"),
]

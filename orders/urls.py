from django.contrib.auth import views as auth_views
from django.urls import path

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from orders import asset_views, reorder_pages, saved_quote_views, upload_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("parts/<slug:slug>/", views.part_page, name="part"),
    path("parts/<slug:slug>/configure/", views.part_configure, name="part-configure"),
    path("parts/<slug:slug>/drawing/", views.part_drawing, name="part-drawing"),
    path("parts/<slug:slug>/add/", views.cart_add, name="cart-add"),
    path("previews/<str:key>.<str:kind>", views.preview_file, name="preview-file"),
    path("cart/", views.cart_page, name="cart"),
    path("cart/<id:line_id>/remove/", views.cart_remove, name="cart-remove"),
    path("orders/", views.orders_page, name="orders"),
    path("orders/<id:order_id>/", views.order_page, name="order"),
    # Before order-action, whose <str:action> would take "reorder" too.
    path("orders/<id:order_id>/reorder/", reorder_pages.order_reorder_page, name="order-reorder"),
    path("orders/<id:order_id>/<str:action>/", views.order_action, name="order-action"),
    path("approvals/", views.approvals_page, name="approvals"),
    # Assets (orders.asset_views): a team's equipment and its spare-parts list.
    path("assets/", asset_views.assets_page, name="assets"),
    path("assets/new/", asset_views.asset_new, name="asset-new"),
    path("assets/<id:asset_id>/", asset_views.asset_page, name="asset"),
    path("assets/<id:asset_id>/edit/", asset_views.asset_edit, name="asset-edit"),
    path("assets/<id:asset_id>/down/", asset_views.asset_down, name="asset-down"),
    path("assets/<id:asset_id>/order/", asset_views.asset_order, name="asset-order"),
    path(
        "assets/<id:asset_id>/parts/<id:part_id>/remove/",
        asset_views.asset_part_delete,
        name="asset-part-remove",
    ),
    path(
        "parts/<slug:slug>/save-to-asset/",
        asset_views.part_save_to_asset,
        name="part-save-to-asset",
    ),
    path(
        "order-lines/<id:line_id>/save-to-asset/",
        asset_views.line_save_to_asset,
        name="line-save-to-asset",
    ),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    # Customers' own models (orders.uploads).
    path("uploads/", upload_views.uploads_page, name="uploads"),
    path("uploads/<id:upload_id>/", upload_views.upload_page, name="upload"),
    path(
        "uploads/<id:upload_id>/configure/",
        upload_views.upload_configure,
        name="upload-configure",
    ),
    path("uploads/<id:upload_id>/add/", upload_views.upload_add, name="upload-add"),
    path("uploads/<id:upload_id>/scale/", upload_views.upload_scale, name="upload-scale"),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    # Saved quotes (orders.saved_quote_views).
    path("cart/save-quote/", saved_quote_views.cart_save_quote, name="cart-save-quote"),
    path("quotes/", saved_quote_views.saved_quotes_page, name="saved-quotes"),
    path("quotes/<id:quote_id>/", saved_quote_views.saved_quote_page, name="saved-quote"),
    path("quotes/<id:quote_id>/pdf/", saved_quote_views.saved_quote_pdf, name="saved-quote-pdf"),
    path(
        "quotes/<id:quote_id>/share/", saved_quote_views.saved_quote_share, name="saved-quote-share"
    ),
    path(
        "quotes/<id:quote_id>/requote/",
        saved_quote_views.saved_quote_requote,
        name="saved-quote-requote",
    ),
]

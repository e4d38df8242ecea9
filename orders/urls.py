from django.contrib.auth import views as auth_views
from django.urls import path

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from orders import upload_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("parts/<slug:slug>/", views.part_page, name="part"),
    path("parts/<slug:slug>/configure/", views.part_configure, name="part-configure"),
    path("parts/<slug:slug>/drawing/", views.part_drawing, name="part-drawing"),
    path("parts/<slug:slug>/add/", views.cart_add, name="cart-add"),
    path("previews/<str:key>.<str:kind>", views.preview_file, name="preview-file"),
    path("cart/", views.cart_page, name="cart"),
    path("cart/<id:index>/remove/", views.cart_remove, name="cart-remove"),
    path("orders/", views.orders_page, name="orders"),
    path("orders/<id:order_id>/", views.order_page, name="order"),
    path("orders/<id:order_id>/<str:action>/", views.order_action, name="order-action"),
    path("approvals/", views.approvals_page, name="approvals"),
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
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
]

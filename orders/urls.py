from django.contrib.auth import views as auth_views
from django.urls import path

from orders import views

urlpatterns = [
    path("", views.home, name="home"),
    path("orders/<int:order_id>/", views.order_page, name="order"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="home"), name="logout"),
]

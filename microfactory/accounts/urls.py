from django.urls import path

import microfactory.limits  # noqa: F401  (registers the <id:...> path converter)
from microfactory.accounts import views

app_name = "accounts"
urlpatterns = [
    path("tokens/", views.tokens_page, name="tokens"),
    path("tokens/<id:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("mfa/setup/", views.mfa_setup, name="mfa-setup"),
    path("mfa/verify/", views.mfa_verify, name="mfa-verify"),
]

"""API tokens in the admin: list (prefix, owner, created, last used, expiry), make one (shown
once, on the page after saving), revoke (delete). TOTP devices are django-otp's own admin
(Admin → TOTP devices): deleting a user's device resets their second factor."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern
from django_otp.plugins.otp_totp import admin as otp_totp_admin
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from microfactory.accounts import services
from microfactory.accounts.models import ApiToken
from microfactory.accounts.views import EXPIRY_CHOICES

# Knox registers its own token model, which KNOX_TOKEN_MODEL replaces with ApiToken.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


class ApiTokenAddForm(forms.ModelForm):
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="365", required=False)

    class Meta:
        model = ApiToken
        fields = ["user", "name"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        user = cleaned.get("user")
        if user is not None and services.api_token_room(user=user) <= 0:
            raise forms.ValidationError("this user has as many tokens as allowed: revoke one")
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["token_key", "name", "user", "created", "last_used_at", "expiry"]
    list_select_related = ["user"]
    search_fields = ["token_key", "name", "user__username"]
    raw_id_fields = ["user"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", "name", "expires")
        return ("name", "user", "token_key", "created", "last_used_at", "expiry")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("user", "token_key", "created", "last_used_at", "expiry")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        days = form.cleaned_data.get("expires") or ""
        token, secret = services.api_token_create(
            user=obj.user,
            name=obj.name,
            expires_in=timedelta(days=int(days)) if days else None,
        )
        # The admin goes on with `obj` (its log entry, the next page): make it the new row.
        obj.pk, obj.digest, obj.token_key = token.pk, token.digest, token.token_key
        obj.created, obj.expiry = token.created, token.expiry
        obj._state.adding, obj._state.db = False, token._state.db
        obj.secret = secret  # for response_add only; never stored

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new token, on this page only: not in a message (a cookie) nor in a URL."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "token": obj,
            "secret": obj.secret,
            "title": "API token created",
        }
        response = TemplateResponse(request, "admin/accounts/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response


class TOTPDeviceAdmin(otp_totp_admin.TOTPDeviceAdmin):  # type: ignore[misc]  # no types
    """django-otp's admin without its key and QR-code pages: OTP_ADMIN_HIDE_SENSITIVE_DATA
    refuses them anyway, and their `<int:pk>` routes would take any number (our routes use
    the bounded `<id:...>`)."""

    def get_urls(self) -> list[URLPattern]:
        hidden = {"otp_totp_totpdevice_config", "otp_totp_totpdevice_qrcode"}
        urls: list[URLPattern] = super().get_urls()
        return [url for url in urls if getattr(url, "name", None) not in hidden]


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPDeviceAdmin)

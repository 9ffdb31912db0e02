from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from api.main import api
from billing import views as billing_views
from instances import console_views
from portal import views

# Staff sign in through allauth's login (rate-limited, two-factor aware), never admin's own form.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = "VPS portal — support"
admin.site.site_title = "VPS portal admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("plans/", billing_views.plans, name="plans"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", views.favicon),
    # Support's console of a server: under /admin/ (the admin's login and second factor).
    path(
        "admin/instances/instance/<int:instance_id>/console/",
        admin.site.admin_view(console_views.staff_console),
        name="staff_console",
    ),
    path(
        "admin/instances/instance/<int:instance_id>/console/session/",
        admin.site.admin_view(console_views.staff_console_session),
        name="staff_console_session",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/api-tokens/", include("api.urls")),
    path("account/", include("accounts.urls")),
    path("servers/", include("instances.urls")),
    path("billing/", include("billing.urls")),
    path("api/v1/", api.urls),
]

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("order/", views.order_new, name="order_new"),
    path("order/summary/", views.order_summary, name="order_summary"),
    path("orders/<int:order_id>/", views.order_detail, name="order"),
    path("orders/<int:order_id>/pay/", views.order_pay, name="order_pay"),
    path("orders/<int:order_id>/pay-saved/", views.order_pay_saved, name="order_pay_saved"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<int:order_id>/password/", views.order_password, name="order_password"),
    path("payment-details/", views.customer_portal, name="customer_portal"),
    path("servers/<int:instance_id>/upgrade/", views.server_upgrade, name="upgrade"),
    path(
        "servers/<int:instance_id>/upgrade/confirm/",
        views.server_upgrade_confirm,
        name="upgrade_confirm",
    ),
    path("servers/<int:instance_id>/downgrade/", views.server_downgrade, name="downgrade"),
    path("servers/<int:instance_id>/cancel/", views.server_cancel, name="cancel"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]

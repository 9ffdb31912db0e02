from django.urls import path

from instances import views

app_name = "instances"

urlpatterns = [
    path("", views.server_list, name="list"),
    path("<int:instance_id>/", views.server_detail, name="detail"),
]

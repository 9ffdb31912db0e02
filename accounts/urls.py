from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("profile/", views.profile, name="profile"),
    path("ssh-keys/", views.ssh_keys, name="ssh_keys"),
    path("ssh-keys/<int:key_id>/delete/", views.ssh_key_delete, name="ssh_key_delete"),
]

"""URLs of a site that installs botdialogs without local Telegram."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("botdialogs.urls")),
]

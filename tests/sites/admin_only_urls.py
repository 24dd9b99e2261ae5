"""URLs of a site with the admin only: no chat playground, no live monitor page."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("botdialogs.urls")),
    # Local Telegram, the optional Bot API emulator for bots without a token.
    path("localtg/", include("botdialogs.localtg.urls")),
]

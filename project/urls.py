from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    # What this is, with the way in: the chat playground, the live monitor, the admin.
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    path("admin/", admin.site.urls),
    path("", include("botdialogs.urls")),
    # The demo's Mini App ("Open the menu" in the food order).
    path("shop/", include("project.shop.urls")),
    # Local Telegram, the optional Bot API emulator for bots without a token.
    path("localtg/", include("botdialogs.localtg.urls")),
]

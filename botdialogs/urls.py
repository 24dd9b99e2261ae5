"""botdialogs URLs: include them at the site root (``path("", include("botdialogs.urls"))``)."""

from django.urls import path

from botdialogs import views
from botdialogs.http import views as http_views

app_name = "botdialogs"
urlpatterns = [
    path("bots/<str:name>/webhook/", http_views.webhook, name="webhook"),
    # Staff only (the admin's login otherwise); events over ws/botdialogs/monitor/.
    path("botdialogs/monitor/", views.monitor, name="monitor"),
]

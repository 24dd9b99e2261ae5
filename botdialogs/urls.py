"""botdialogs URLs: include them at the site root (``path("", include("botdialogs.urls"))``)."""

from django.urls import include, path

from botdialogs import views

app_name = "botdialogs"
urlpatterns = [
    path("bots/<str:name>/webhook/", views.webhook, name="webhook"),
    path("localtg/", include("botdialogs.localtg.urls")),
]

"""botdialogs URLs: include them at the site root (``path("", include("botdialogs.urls"))``)."""

from django.urls import path

from botdialogs.http import views

app_name = "botdialogs"
urlpatterns = [
    path("bots/<str:name>/webhook/", views.webhook, name="webhook"),
]

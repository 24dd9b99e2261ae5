from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The webhook (bots/<name>/webhook/) and the live monitor (botdialogs/monitor/).
    path("", include("botdialogs.urls")),
    # Local Telegram and its chat playground (never on a public site: it has no sign-in).
    path("localtg/", include("botdialogs.localtg.urls")),
]

if settings.DEBUG:
    # uvicorn serves no static files: in DEBUG, Django's staticfiles view does (the admin's,
    # the playground's and the monitor's). In production, collectstatic and a file server.
    urlpatterns += staticfiles_urlpatterns()

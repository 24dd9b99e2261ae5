"""Local Telegram URLs (mounted at ``/localtg/``): the Bot API, the simulated users' API and
the chat playground's pages."""

from django.urls import path

from botdialogs.localtg import pages, views, webapps

app_name = "localtg"
chat = "api/bots/<str:name>/chats/<int:chat_id>/"
urlpatterns = [
    path("", pages.playground, name="playground"),
    path("bot<str:token>/<str:method>", views.bot_api, name="bot-api"),
    path(f"{chat}messages/", views.messages, name="messages"),
    path(f"{chat}press/", views.press_button, name="press"),
    path(f"{chat}block/", views.block, name="block"),
    path(f"{chat}pay/", views.pay_invoice, name="pay"),
    path(f"{chat}webapp/", webapps.open_web_app, name="webapp"),
    path("api/bots/<str:name>/rate-limits/", views.rate_limits, name="rate-limits"),
    path("api/bots/<str:name>/faults/", views.fault, name="faults"),
    path("api/files/<str:file_id>/", pages.file, name="file"),
    path("<str:name>/<int:chat_id>/", pages.chat, name="chat"),
]

"""Local Telegram URLs (mounted at ``/localtg/``): the Bot API and the simulated users' API."""

from django.urls import path

from botdialogs.localtg import views

app_name = "localtg"
chat = "api/bots/<str:name>/chats/<int:chat_id>/"
urlpatterns = [
    path("bot<str:token>/<str:method>", views.bot_api, name="bot-api"),
    path(f"{chat}messages/", views.messages, name="messages"),
    path(f"{chat}press/", views.press_button, name="press"),
    path(f"{chat}block/", views.block, name="block"),
    path("api/bots/<str:name>/rate-limits/", views.rate_limits, name="rate-limits"),
]

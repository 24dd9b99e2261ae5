from django.apps import AppConfig


class LocalTelegramConfig(AppConfig):
    name = "botdialogs.localtg"
    label = "localtg"
    verbose_name = "Local Telegram"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig
from django.core import checks


class BotDialogsConfig(AppConfig):
    """Registers the system checks; everything else is imported on first use."""

    name = "botdialogs"
    verbose_name = "Bot dialogs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from botdialogs import checks as botdialogs_checks

        checks.register(botdialogs_checks.check_settings, "botdialogs")
        checks.register(botdialogs_checks.check_importable, "botdialogs")

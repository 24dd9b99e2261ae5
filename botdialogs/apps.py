from django.apps import AppConfig
from django.core import checks


class BotDialogsConfig(AppConfig):
    """Registers the system checks and aiogram_dialog's wider intent ids; nothing else."""

    name = "botdialogs"
    verbose_name = "Bot dialogs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from botdialogs import checks as botdialogs_checks
        from botdialogs import tasks  # noqa: F401 - registers the Celery tasks task_queue.enqueue names
        from botdialogs.engine import intent_ids

        # Before any dialog starts: aiogram_dialog's own ids repeat within a second.
        intent_ids.install()

        checks.register(botdialogs_checks.check_settings, "botdialogs")
        checks.register(botdialogs_checks.check_importable, "botdialogs")

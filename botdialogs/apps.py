from importlib.util import find_spec

from django.apps import AppConfig
from django.core import checks


class BotDialogsConfig(AppConfig):
    """Registers the system checks and aiogram_dialog's wider intent ids; nothing else."""

    name = "botdialogs"
    verbose_name = "Bot dialogs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from botdialogs import checks as botdialogs_checks
        from botdialogs.engine import intent_ids

        if find_spec("celery") is not None:  # the [celery] extra; check_extras says if needed
            from botdialogs import tasks  # noqa: F401 - registers the tasks task_queue.enqueue names

        # Before any dialog starts: aiogram_dialog's own ids repeat within a second.
        intent_ids.install()

        checks.register(botdialogs_checks.check_settings, "botdialogs")
        checks.register(botdialogs_checks.check_importable, "botdialogs")
        checks.register(botdialogs_checks.check_extras, "botdialogs")

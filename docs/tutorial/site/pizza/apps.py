from django.apps import AppConfig


class PizzaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pizza"

    def ready(self) -> None:
        from pizza import signals  # noqa: F401 - connects the post_save receiver

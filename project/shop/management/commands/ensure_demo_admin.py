"""Create the demo's admin/admin superuser once, and only while DEBUG is on."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo superuser admin/admin if DEBUG is on and it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo admin is created.")
            return
        users = get_user_model().objects
        if users.filter(username="admin").exists():
            return
        users.create_superuser("admin", "admin@example.com", "admin")
        self.stdout.write("Created the demo admin: user admin, password admin.")

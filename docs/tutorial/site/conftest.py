import pytest
from django.db import connection

from botdialogs.testing import AsgiServer, server_env


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker):
    """The site in uvicorn, on the test database, for the whole test session."""
    with django_db_blocker.unblock():
        env = server_env(connection.settings_dict)  # DATABASE_URL of the test database
    with AsgiServer("mysite.asgi:application", env=env) as running:
        yield running

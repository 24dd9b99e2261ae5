"""Just enough Django settings for autodoc to import botdialogs (no database is used)."""

SECRET_KEY = "docs-only"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "botdialogs",
    "botdialogs.localtg",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
BOTDIALOGS = {"BOTS": {}}
USE_TZ = True

# The production profile: DJANGO_SETTINGS_MODULE=mysite.settings_production.
import os

from mysite.settings import *  # noqa: F403

DEBUG = False
SECRET_KEY = os.environ["SECRET_KEY"]
ALLOWED_HOSTS = os.environ["ALLOWED_HOSTS"].split(",")
BOTDIALOGS["BOTS"]["default"]["WEBHOOK_SECRET"] = os.environ["TELEGRAM_WEBHOOK_SECRET"]  # noqa: F405

SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STATIC_ROOT = BASE_DIR / "staticfiles"  # noqa: F405 - collectstatic copies files here

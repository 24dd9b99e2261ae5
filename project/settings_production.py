"""The demo project's production profile: ``DJANGO_SETTINGS_MODULE=project.settings_production``.

Everything :mod:`project.settings` reads from the environment, plus what a public HTTPS site
needs, so that ``manage.py check --deploy --fail-level WARNING`` passes:

- ``DEBUG`` is off (setting ``DEBUG=1`` with this profile is an error, not a silent override);
- ``SECRET_KEY`` and ``ALLOWED_HOSTS`` must be set (no local defaults);
- HTTPS: redirect, HSTS and secure cookies, each adjustable from the environment below;
- every bot needs ``TELEGRAM_WEBHOOK_SECRET`` (botdialogs.E014 fails the check for a bot with
  a token and no secret; botdialogs.W001 warns for a local bot without one).

Behind a TLS-terminating proxy set ``SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO=https``
(only if the proxy sets that header and strips it from clients).
"""

import os

from django.core.exceptions import ImproperlyConfigured

from project.settings import *  # noqa: F403
from project.settings import env_bool, env_list


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set with project.settings_production")
    return value


if env_bool("DEBUG", False):
    raise ImproperlyConfigured("project.settings_production runs with DEBUG off: unset DEBUG")
DEBUG = False
# Static files: run `manage.py collectstatic` at deploy; WhiteNoise serves STATIC_ROOT with
# hashed names (cached for a year) and gzip/brotli copies.
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# project.settings falls back to a local key while its own DEBUG default is on: not here.
SECRET_KEY = required("SECRET_KEY")
required("ALLOWED_HOSTS")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "")

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "")
if _proxy_header:
    _header, _, _value = _proxy_header.partition("=")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip() or "https")

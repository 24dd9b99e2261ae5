"""Django views for Mini Apps: :func:`telegram_web_app` checks the request's ``initData``.

Where the page puts ``initData`` (``Telegram.WebApp.initData``):

- a header, ``Authorization: tma <initData>`` or ``X-Telegram-Init-Data: <initData>``;
- or the body, as the field ``init_data`` of a form or of a JSON object.

CSRF: a request that carries ``initData`` in a header is exempt from Django's CSRF check.
A browser sends such a header cross-site only when CORS allows it (so never allow these
headers cross-origin), and ``initData`` is not a cookie: a forged request has nothing to
ride on. ``initData`` in a body could be posted by another site's form (for instance to
log the visitor in as the attacker), so there Django's CSRF check applies as usual.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth import authenticate, login
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from botdialogs.conf import get_settings
from botdialogs.exceptions import UnknownBot
from botdialogs.webapp.exceptions import MalformedInitData, TelegramAuthError
from botdialogs.webapp.init_data import TelegramUser, WebAppChat, WebAppInitData
from botdialogs.webapp.verify import verify_init_data

HEADER = "X-Telegram-Init-Data"
AUTHORIZATION_SCHEME = "tma"
BODY_FIELD = "init_data"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class TelegramWebAppUser:
    """Who opened the Mini App: ``request.telegram_user`` in a :func:`telegram_web_app` view."""

    bot: str
    user: TelegramUser
    init_data: WebAppInitData
    source: Literal["header", "body"]

    @property
    def id(self) -> int:
        """The Telegram user id."""
        return self.user.id

    @property
    def chat(self) -> WebAppChat | None:
        """The chat, when Telegram names it (apps opened from the attachment menu)."""
        return self.init_data.chat

    @property
    def chat_id(self) -> int:
        """The chat to update: the named chat, else the private chat with the bot (= user id)."""
        return self.init_data.chat.id if self.init_data.chat is not None else self.user.id

    @property
    def start_param(self) -> str:
        """The ``startapp`` parameter of the link that opened the app ("" if none)."""
        return self.init_data.start_param

    @property
    def query_id(self) -> str:
        """The id for ``answerWebAppQuery`` (apps opened from inline mode), or ""."""
        return self.init_data.query_id


def init_data_of(request: HttpRequest) -> tuple[bytes, Literal["header", "body"]] | None:
    """The raw ``initData`` a request carries and where it was; None when it has none.

    Header values arrive decoded as Latin-1 (WSGI and ASGI alike): they are turned back into
    their bytes, so non-UTF-8 is refused, not guessed at.
    """
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == AUTHORIZATION_SCHEME and value:
        return value.strip().encode("latin-1", "replace"), "header"
    header = request.headers.get(HEADER)
    if header is not None:
        return header.strip().encode("latin-1", "replace"), "header"
    if request.method not in UNSAFE_METHODS:
        return None
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise MalformedInitData("The request body is not JSON") from None
        field = body.get(BODY_FIELD) if isinstance(body, dict) else None
        if field is None:
            return None
        if not isinstance(field, str):
            raise MalformedInitData(f"{BODY_FIELD} must be a string")
        return field.encode("utf-8", "surrogatepass"), "body"
    if BODY_FIELD in request.POST:
        return request.POST[BODY_FIELD].encode("utf-8", "surrogatepass"), "body"
    return None


def telegram_user_for(request: HttpRequest, bot: str) -> TelegramWebAppUser:
    """The checked Telegram user of ``request`` for ``bot``; raises TelegramAuthError."""
    found = init_data_of(request)
    if found is None:
        raise MalformedInitData(
            f"initData is missing: send Telegram.WebApp.initData in the {HEADER} header"
        )
    raw, source = found
    init_data = verify_init_data(raw, bot)
    if init_data.user is None:
        raise MalformedInitData("initData names no user")
    return TelegramWebAppUser(bot=bot, user=init_data.user, init_data=init_data, source=source)


def refusal(error: TelegramAuthError) -> JsonResponse:
    """The JSON answer for a refused request: ``{"ok": false, "error": "..."}``."""
    return JsonResponse({"ok": False, "error": str(error)}, status=error.status)


def _bot_for(bot: str | None, kwargs: dict[str, Any]) -> str:
    if bot is not None:
        return bot
    if "bot_name" in kwargs:
        return str(kwargs["bot_name"])
    bots = list(get_settings().bots)
    if len(bots) != 1:
        raise ImproperlyConfigured(
            "telegram_web_app(bot=...) must name the bot when BOTDIALOGS has several"
        )
    return bots[0]


View = Callable[..., Any]


def _admit(
    request: HttpRequest, function: View, bot: str | None, login_user: bool, args: Any, kwargs: Any
) -> HttpResponse | None:
    """Check ``request`` for ``function``: None when it may run, else the refusal to answer.

    Sync (the login reads the database): an async view runs it in a thread.
    """
    try:
        telegram_user = telegram_user_for(request, _bot_for(bot, kwargs))
    except TelegramAuthError as error:
        return refusal(error)
    except UnknownBot as error:
        return JsonResponse({"ok": False, "error": str(error)}, status=404)
    if telegram_user.source == "body" and request.method in UNSAFE_METHODS:
        rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(
            request, function, args, kwargs
        )
        if rejected is not None:
            return rejected
    request.telegram_user = telegram_user  # type: ignore[attr-defined]
    if login_user:
        user = authenticate(
            request, telegram_bot=telegram_user.bot, telegram_user=telegram_user.user
        )
        if user is not None:
            login(request, user, backend="botdialogs.webapp.backends.TelegramBackend")
    return None


def telegram_web_app(
    view: View | None = None, *, bot: str | None = None, login_user: bool = False
) -> Any:
    """Decorate a view (``def`` or ``async def``) that only Mini App requests of ``bot`` may reach.

    Sets ``request.telegram_user`` (:class:`TelegramWebAppUser`); a request without valid
    ``initData`` is answered 400 or 403 (JSON) and never reaches the view. ``bot`` defaults
    to the URL's ``bot_name`` argument, else the only configured bot. With ``login_user``
    the linked site user is logged in (``TelegramBackend``, creating one when
    ``WEBAPP_CREATE_USERS`` is on); see the module docstring for the CSRF rule. An async
    view stays async: the checks run in a thread, the view on the event loop.
    """

    def decorate(function: View) -> View:
        if iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await sync_to_async(_admit)(
                    request, function, bot, login_user, args, kwargs
                )
                if refused is not None:
                    return refused
                try:
                    return await function(request, *args, **kwargs)
                except TelegramAuthError as error:
                    return refusal(error)

            return csrf_exempt(async_wrapper)

        @functools.wraps(function)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = _admit(request, function, bot, login_user, args, kwargs)
            if refused is not None:
                return refused
            try:
                return function(request, *args, **kwargs)
            except TelegramAuthError as error:  # e.g. no Idempotency-Key (webapp.dialogs)
                return refusal(error)

        return csrf_exempt(wrapper)

    return decorate(view) if view is not None else decorate


def log_in_with_login_widget(request: HttpRequest, bot: str) -> Any | None:
    """Check the Login Widget data ``request.POST`` carries and sign in or link its user.

    A signed-in visitor gets the Telegram user linked to their account (unless it is
    linked to another one: LinkConflict); anyone else is logged in as the linked account
    (or a new one, with ``WEBAPP_CREATE_USERS``). Returns the user, or None when nobody is
    linked. Only from a POST that passed Django's CSRF check: from a GET, a link another
    site planted would link the visitor's account to the attacker's Telegram user.
    """
    from botdialogs.webapp.accounts import link, linked_site_user
    from botdialogs.webapp.exceptions import LinkConflict
    from botdialogs.webapp.login_widget import verify_login_widget

    if request.method != "POST":
        raise MalformedInitData("Login Widget data must be POSTed (with the CSRF token)")
    fields = request.POST.copy()
    fields.pop("csrfmiddlewaretoken", None)
    telegram_user = verify_login_widget(fields, bot)
    if request.user.is_authenticated:
        linked = linked_site_user(bot, telegram_user)
        if linked is not None and linked.pk != request.user.pk:
            raise LinkConflict("This Telegram account is linked to another site account")
        link(bot, telegram_user, request.user)
        return request.user
    user = authenticate(request, telegram_bot=bot, telegram_user=telegram_user)
    if user is not None:
        login(request, user, backend="botdialogs.webapp.backends.TelegramBackend")
    return user


def login_widget(request: HttpRequest, bot_name: str) -> HttpResponse:
    """POST the widget's user object here (form fields + CSRF token): JSON ``{"ok", "user"}``."""
    try:
        user = log_in_with_login_widget(request, bot_name)
    except TelegramAuthError as error:
        return refusal(error)
    except UnknownBot as error:
        return JsonResponse({"ok": False, "error": str(error)}, status=404)
    if user is None:
        return JsonResponse(
            {"ok": False, "error": "No site account is linked to this Telegram account"},
            status=403,
        )
    return JsonResponse({"ok": True, "user": user.get_username()})


#: Who may frame a Mini App page: this site (local Telegram's panel) and Telegram's web
#: clients, which show Mini Apps in an iframe; nobody else (clickjacking).
FRAME_ANCESTORS = "'self' https://web.telegram.org"


def mini_app_page(view: View) -> View:
    """Let a Mini App's page (sync or async view) be framed by Telegram's web clients and this site.

    Django's ``X-Frame-Options: DENY`` would blank the page inside Telegram Web; the page gets
    ``Content-Security-Policy: frame-ancestors`` instead (a policy the view set is kept).
    """

    def framable(response: HttpResponse) -> HttpResponse:
        response.xframe_options_exempt = True
        response.headers.setdefault("Content-Security-Policy", f"frame-ancestors {FRAME_ANCESTORS}")
        return response

    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return framable(await view(request, *args, **kwargs))

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return framable(view(request, *args, **kwargs))

    return wrapper

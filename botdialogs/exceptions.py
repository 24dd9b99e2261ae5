"""The botdialogs exception hierarchy: catch ``BotDialogsError`` to catch them all."""

__all__ = [
    "BackgroundNotHandled",
    "BackgroundTimeout",
    "BadBackgroundAction",
    "BadLinkToken",
    "BadUpdate",
    "BotDialogsError",
    "IntentIdCollision",
    "LinkTokenExpired",
    "MissingExtra",
    "NotInAsyncContext",
    "StorageUnavailable",
    "UnknownBot",
    "UnstorableData",
    "UpdateTooLarge",
    "WebhookForbidden",
    "is_transient",
]


class BotDialogsError(Exception):
    """Base class of every error botdialogs raises on purpose."""


class MissingExtra(BotDialogsError, ImportError):
    """A part of botdialogs whose optional dependency is not installed.

    The message names the pip extra that installs it (``pip install "botdialogs[celery]"``);
    ``manage.py check`` reports the same as ``botdialogs.E017`` / ``E018`` where it can.
    """

    def __init__(self, extra: str, module: str, part: str) -> None:
        super().__init__(
            f'{part} needs {module}, which is not installed: pip install "botdialogs[{extra}]"',
            name=module,
        )
        self.extra = extra


class UnknownBot(BotDialogsError, LookupError):
    """A bot name that is not in ``BOTDIALOGS['BOTS']``."""


class BadUpdate(BotDialogsError, ValueError):
    """A webhook body that is not a Telegram Update."""


class UnstorableData(BotDialogsError, TypeError):
    """FSM or dialog data that JSON cannot hold (a datetime, a set, an object)."""


class IntentIdCollision(UnstorableData):
    """A dialog stack that names one intent id twice: two dialogs would share one context.

    aiogram_dialog's own id generator repeats ids within a second; botdialogs installs a wider
    one (:mod:`botdialogs.engine.intent_ids`), and storage refuses a stack that collided anyway.
    """


class BackgroundTimeout(BotDialogsError, TimeoutError):
    """A background dialog action (for instance ``fg()``) was not handled in time."""


class BackgroundNotHandled(BotDialogsError, RuntimeError):
    """A background event finished without reaching a dialog (no stack, access denied)."""


class NotInAsyncContext(BotDialogsError, RuntimeError):
    """A sync helper was called from running async code, where it would block the loop."""


class WebhookForbidden(BotDialogsError, PermissionError):
    """A webhook request without the bot's secret token (answered 403)."""


class UpdateTooLarge(BadUpdate):
    """A webhook body over ``WEBHOOK_MAX_BODY_BYTES`` (answered 413)."""


class WebhookBodyTimeout(BotDialogsError):
    """A webhook body not sent whole within ``WEBHOOK_BODY_TIMEOUT`` (answered 408)."""


class BadBackgroundAction(BotDialogsError, ValueError):
    """A background action that cannot be performed: bad shape, unknown bot or unknown state.

    Never retried: the same action would fail the same way.
    """


class StorageUnavailable(BotDialogsError, ConnectionError):
    """The database could not take or commit an update's state (down, restarting, failing).

    Nothing was committed: the webhook answers 503 and Telegram delivers the update again; a
    task is retried.
    """


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a passing failure of a service (database, Redis, Telegram's
    network or servers) rather than a bug: the work is rolled back and tried again.

    A handler's own bug (any other exception) is logged and not retried: the same update
    would fail the same way forever.
    """
    from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
    from django.db import InterfaceError, OperationalError

    transient: tuple[type[BaseException], ...] = (
        StorageUnavailable,
        OperationalError,
        InterfaceError,
        TelegramNetworkError,
        TelegramServerError,
        TelegramRetryAfter,
        ConnectionError,
        TimeoutError,
    )
    try:
        import psycopg

        transient += (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:  # psycopg is only needed on PostgreSQL
        pass
    try:
        from kombu.exceptions import OperationalError as BrokerError

        transient += (BrokerError,)  # the broker refused a queued update or action
    except ImportError:  # kombu comes with Celery, which is optional
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        transient += (RedisConnectionError, RedisTimeoutError)
    except ImportError:  # redis is only needed with Redis
        pass
    return isinstance(error, transient)


class BadLinkToken(BotDialogsError, ValueError):
    """A site-user link token this site did not make, or that was changed."""


class LinkTokenExpired(BadLinkToken):
    """A site-user link token older than ``BOTDIALOGS['LINK_TOKEN_MAX_AGE']``."""

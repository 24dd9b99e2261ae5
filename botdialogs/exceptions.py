"""The botdialogs exception hierarchy: catch ``BotDialogsError`` to catch them all."""


class BotDialogsError(Exception):
    """Base class of every error botdialogs raises on purpose."""


class UnknownBot(BotDialogsError, LookupError):
    """A bot name that is not in ``BOTDIALOGS['BOTS']``."""


class BadUpdate(BotDialogsError, ValueError):
    """A webhook body that is not a Telegram Update."""


class UnstorableData(BotDialogsError, TypeError):
    """FSM or dialog data that JSON cannot hold (a datetime, a set, an object)."""


class IntentIdCollision(UnstorableData):
    """A dialog stack that names one intent id twice: two dialogs would share one context.

    aiogram_dialog's own id generator repeats ids within a second; botdialogs installs a wider
    one (:mod:`botdialogs.intent_ids`), and storage refuses a stack that collided anyway.
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


class BadBackgroundAction(BotDialogsError, ValueError):
    """A background action that cannot be performed: bad shape, unknown bot or unknown state.

    Never retried: the same action would fail the same way.
    """


class BadLinkToken(BotDialogsError, ValueError):
    """A site-user link token this site did not make, or that was changed."""


class LinkTokenExpired(BadLinkToken):
    """A site-user link token older than ``BOTDIALOGS['LINK_TOKEN_MAX_AGE']``."""

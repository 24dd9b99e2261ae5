"""Tables of botdialogs: who the bots talk to, their FSM state and their dialog stacks.

Keys follow aiogram's ``StorageKey``. Telegram never uses thread 0 or an empty business
connection id, so "none" is stored as ``0`` / ``""``: unique constraints then hold on every
database (NULLs are distinct in SQL unique indexes).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ChatKeyFields(models.Model):
    """The parts of aiogram's StorageKey shared by every storage table."""

    bot_id = models.BigIntegerField("bot id", help_text="Telegram id of the bot (token prefix).")
    chat_id = models.BigIntegerField("chat id")
    user_id = models.BigIntegerField(
        "user id", help_text="For dialog stacks and contexts aiogram_dialog uses the chat id."
    )
    thread_id = models.BigIntegerField("thread id", default=0, help_text="0: no forum topic.")
    business_connection_id = models.CharField(
        "business connection id", max_length=255, default="", blank=True
    )
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        abstract = True


#: Longest language code a chat stores (Django's codes: "en", "pt-br", "zh-hans", "es-419").
LANGUAGE_MAX_LENGTH = 15


class LanguageChosenBy(models.TextChoices):
    """Who set :attr:`TelegramChat.language` (see :mod:`botdialogs.i18n`)."""

    USER = "user", "the user, in the bot"
    ADMIN = "admin", "an admin"
    SITE = "site", "site code"


class TelegramChat(models.Model):
    """A (bot, chat, user) the bot has seen: how site code finds whom to update."""

    bot_id = models.BigIntegerField("bot id")
    chat_id = models.BigIntegerField("chat id")
    user_id = models.BigIntegerField("user id")
    chat_type = models.CharField("chat type", max_length=32, default="private")
    title = models.CharField(max_length=255, blank=True, default="")
    username = models.CharField(max_length=64, blank=True, default="")
    first_name = models.CharField("first name", max_length=255, blank=True, default="")
    last_name = models.CharField("last name", max_length=255, blank=True, default="")
    language_code = models.CharField(
        "Telegram language",
        max_length=16,
        blank=True,
        default="",
        help_text="The language_code of the user's Telegram app, as it last sent it.",
    )
    # db_default: the storage's own INSERT of a new chat names only the columns it writes.
    language = models.CharField(
        "chosen language",
        max_length=LANGUAGE_MAX_LENGTH,
        blank=True,
        default="",
        db_default="",
        help_text="A code of settings.LANGUAGES chosen for this chat (in the bot, by site "
        "code or here); empty: the site user's, else Telegram's, else the site's default.",
    )
    language_source = models.CharField(
        "language chosen by",
        max_length=8,
        blank=True,
        default="",
        db_default="",
        choices=LanguageChosenBy.choices,
    )
    site_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="site user",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="telegram_chats",
        help_text="The site account behind this Telegram user (see botdialogs.background).",
    )
    is_blocked = models.BooleanField(
        "blocked the bot", default=False, help_text="Set on Telegram's 403; broadcasts skip it."
    )
    first_seen = models.DateTimeField("first seen", auto_now_add=True)
    last_seen = models.DateTimeField("last seen", auto_now=True)

    class Meta:
        verbose_name = "Telegram chat"
        constraints = [
            models.UniqueConstraint(
                fields=["bot_id", "chat_id", "user_id"], name="botdialogs_chat_unique"
            )
        ]
        indexes = [
            models.Index(fields=["user_id"], name="botdialogs_chat_by_user"),
            models.Index(fields=["chat_id"], name="botdialogs_chat_by_chat"),
            models.Index(fields=["username"], name="botdialogs_chat_by_username"),
            models.Index(fields=["-last_seen"], name="botdialogs_chat_recent"),
            models.Index(fields=["bot_id", "-last_seen"], name="botdialogs_chat_bot_recent"),
        ]

    def __str__(self) -> str:
        who = f"@{self.username}" if self.username else (self.first_name or str(self.user_id))
        return f"{who} in chat {self.chat_id}"


class FsmRecord(ChatKeyFields):
    """aiogram's plain FSM state and data for one StorageKey (destinies other than ``aiogd:*``)."""

    destiny = models.CharField(max_length=255, default="default")
    state = models.CharField(max_length=255, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    state_expires_at = models.DateTimeField("state expires", null=True, blank=True)
    data_expires_at = models.DateTimeField("data expires", null=True, blank=True)

    class Meta:
        verbose_name = "FSM record"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "bot_id",
                    "chat_id",
                    "user_id",
                    "thread_id",
                    "business_connection_id",
                    "destiny",
                ],
                name="botdialogs_fsm_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["user_id"], name="botdialogs_fsm_by_user"),
            models.Index(fields=["chat_id"], name="botdialogs_fsm_by_chat"),
            models.Index(fields=["bot_id", "state", "-updated_at"], name="botdialogs_fsm_by_state"),
            models.Index(fields=["-updated_at"], name="botdialogs_fsm_recent"),
            models.Index(fields=["bot_id", "-updated_at"], name="botdialogs_fsm_bot_recent"),
            models.Index(fields=["state_expires_at"], name="botdialogs_fsm_state_expiry"),
            models.Index(fields=["data_expires_at"], name="botdialogs_fsm_data_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.destiny} of user {self.user_id} in chat {self.chat_id}: {self.state}"


class DialogStack(ChatKeyFields):
    """An aiogram_dialog stack: the dialogs a chat has open, bottom to top."""

    stack_id = models.CharField(
        "stack id", max_length=255, blank=True, help_text='"" is the default stack.'
    )
    intents = models.JSONField(default=list, blank=True, help_text="Intent ids, bottom to top.")
    state = models.CharField(
        "current state",
        max_length=255,
        blank=True,
        default="",
        help_text="State of the top dialog (copied from its context on every write).",
    )
    depth = models.PositiveSmallIntegerField(default=0, help_text="Number of open dialogs.")
    last_message_id = models.BigIntegerField("last message id", null=True, blank=True)
    last_reply_keyboard = models.BooleanField("last reply keyboard", default=False)
    last_media_id = models.CharField(max_length=255, null=True, blank=True)
    last_media_unique_id = models.CharField(max_length=255, null=True, blank=True)
    last_income_media_group_id = models.CharField(max_length=255, null=True, blank=True)
    extra = models.JSONField(
        default=dict, blank=True, help_text="Fields a newer aiogram_dialog stores that we keep."
    )
    expires_at = models.DateTimeField("expires", null=True, blank=True)

    class Meta:
        verbose_name = "dialog stack"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "bot_id",
                    "chat_id",
                    "user_id",
                    "thread_id",
                    "business_connection_id",
                    "stack_id",
                ],
                name="botdialogs_stack_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["user_id"], name="botdialogs_stack_by_user"),
            models.Index(fields=["chat_id"], name="botdialogs_stack_by_chat"),
            models.Index(
                fields=["bot_id", "state", "-updated_at"], name="botdialogs_stack_by_state"
            ),
            models.Index(fields=["-updated_at"], name="botdialogs_stack_recent"),
            models.Index(fields=["bot_id", "-updated_at"], name="botdialogs_stack_bot_recent"),
            models.Index(fields=["expires_at"], name="botdialogs_stack_expiry"),
        ]

    def __str__(self) -> str:
        name = f"stack {self.stack_id!r}" if self.stack_id else "default stack"
        return f"{name} of chat {self.chat_id}: {self.state or 'empty'}"


class DialogContext(ChatKeyFields):
    """One open dialog (aiogram_dialog Context): its state and data."""

    intent_id = models.CharField("intent id", max_length=64)
    stack = models.ForeignKey(
        DialogStack,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="contexts",
        help_text="Deleted with its stack: a stack and its contexts live and expire together.",
    )
    aiogd_stack_id = models.CharField(
        "aiogram_dialog stack id",
        max_length=255,
        blank=True,
        help_text="aiogram_dialog's id of the stack this dialog was opened in "
        "(the stack row itself is the stack field).",
    )
    state = models.CharField(max_length=255)
    start_data = models.JSONField("start data", null=True, blank=True)
    dialog_data = models.JSONField("dialog data", default=dict, blank=True)
    widget_data = models.JSONField("widget data", default=dict, blank=True)
    access_settings = models.JSONField("access settings", null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "dialog context"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "bot_id",
                    "chat_id",
                    "user_id",
                    "thread_id",
                    "business_connection_id",
                    "intent_id",
                ],
                name="botdialogs_context_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["user_id"], name="botdialogs_context_by_user"),
            models.Index(fields=["chat_id"], name="botdialogs_context_by_chat"),
            models.Index(
                fields=["bot_id", "state", "-updated_at"], name="botdialogs_context_by_state"
            ),
            models.Index(fields=["-updated_at"], name="botdialogs_context_recent"),
            models.Index(fields=["bot_id", "-updated_at"], name="botdialogs_context_bot_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.state} ({self.intent_id}) in chat {self.chat_id}"


class ProcessedUpdate(models.Model):
    """An update_id a bot has taken: a second delivery of it is acknowledged and dropped.

    The row is inserted *before* the update is handled, and the unique constraint decides
    which of two concurrent deliveries wins. Rows older than ``UPDATE_ID_TTL`` are deleted by
    :func:`botdialogs.storage.cleanup.delete_expired_updates`.
    """

    bot_name = models.CharField("bot", max_length=64, help_text="Name in BOTDIALOGS['BOTS'].")
    update_id = models.BigIntegerField("update id")
    received_at = models.DateTimeField("received", default=timezone.now)

    class Meta:
        verbose_name = "processed update"
        constraints = [
            models.UniqueConstraint(
                fields=["bot_name", "update_id"], name="botdialogs_update_once_per_bot"
            )
        ]
        indexes = [models.Index(fields=["received_at"], name="botdialogs_update_expiry")]

    def __str__(self) -> str:
        return f"update {self.update_id} of bot {self.bot_name}"


class Broadcast(models.Model):
    """One background action sent to many chats, with its progress (botdialogs.broadcast)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    bot_name = models.CharField("bot", max_length=64, help_text="Name in BOTDIALOGS['BOTS'].")
    action = models.JSONField(
        help_text="The background action for every chat, without its target (see "
        "botdialogs.background.actions)."
    )
    chat_pks = models.JSONField(
        "chats", default=list, help_text="Primary keys of the TelegramChats to reach."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Errors, and chats that blocked us.")
    skipped = models.PositiveIntegerField(default=0, help_text="Chats known to block the bot.")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField("created", auto_now_add=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    class Meta:
        verbose_name = "broadcast"
        indexes = [models.Index(fields=["-created_at"], name="botdialogs_broadcast_recent")]

    def __str__(self) -> str:
        return f"broadcast #{self.pk} ({self.action.get('action', '?')}): {self.status}"

    @property
    def processed(self) -> int:
        """Chats done so far, however they ended."""
        return self.sent + self.failed + self.skipped


class BackgroundAction(models.Model):
    """A background action a worker received: recorded once, so a retry never repeats it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        RETRY = "retry", "Failed, will be retried"
        REJECTED = "rejected", "Rejected (bad action, never retried)"

    action_id = models.CharField("action id", max_length=64, unique=True)
    bot_name = models.CharField("bot", max_length=64)
    action = models.CharField(max_length=16)
    chat_id = models.BigIntegerField("chat id")
    user_id = models.BigIntegerField("user id")
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    broadcast = models.ForeignKey(
        Broadcast,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="actions",
    )
    started_at = models.DateTimeField("started", default=timezone.now)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    class Meta:
        verbose_name = "background action"
        indexes = [
            models.Index(fields=["chat_id"], name="botdialogs_action_by_chat"),
            models.Index(fields=["status", "-started_at"], name="botdialogs_action_by_status"),
        ]

    def __str__(self) -> str:
        return f"{self.action} for chat {self.chat_id}: {self.status}"


# -- nodes (botdialogs.nodes) ---------------------------------------------------------------
class NodeState(ChatKeyFields):
    """Where one user is in a nodes router: the node's stable key and its typed data.

    Written in the same unit of work (and transaction) as the update that moved the user.
    """

    router = models.CharField(
        max_length=64,
        default="nodes",
        help_text="Name of the Nodes router (one bot may have several).",
    )
    node_key = models.CharField(
        "node", max_length=128, help_text="The registry key of the node (never a class path)."
    )
    data = models.JSONField(default=dict, blank=True, help_text="The node's pydantic data as JSON.")
    schema_version = models.PositiveIntegerField(
        "schema version", default=1, help_text="The node class's data schema version when saved."
    )

    class Meta:
        verbose_name = "node state"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "bot_id",
                    "chat_id",
                    "user_id",
                    "thread_id",
                    "business_connection_id",
                    "router",
                ],
                name="botdialogs_node_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["user_id"], name="botdialogs_node_by_user"),
            models.Index(fields=["bot_id", "node_key"], name="botdialogs_node_by_node"),
        ]

    def __str__(self) -> str:
        return f"{self.router}: user {self.user_id} in chat {self.chat_id} at {self.node_key}"


# -- dialog timers (botdialogs.timers) -------------------------------------------------------


class DialogTimer(models.Model):
    """A background action due at a time, for one chat: fired once by the timer firer.

    It turns "fired" in the transaction that commits the dialog state the action changed
    (:class:`botdialogs.storage.TimerClaim`); a cancelled or replaced timer never fires.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        FIRED = "fired", "Fired"
        FAILED = "failed", "Failed (no more attempts)"
        CANCELLED = "cancelled", "Cancelled"

    id = models.CharField("timer id", max_length=32, primary_key=True)
    bot_name = models.CharField("bot", max_length=64)
    user_id = models.BigIntegerField("user id")
    chat_id = models.BigIntegerField("chat id")
    key = models.CharField(
        max_length=128,
        blank=True,
        default="",
        help_text="Per bot and chat: scheduling the same key again replaces the pending timer.",
    )
    due_at = models.DateTimeField("due")
    action = models.JSONField(help_text="The background action performed when it fires.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField("last error", blank=True, default="")
    leased_until = models.DateTimeField(
        "leased until",
        null=True,
        blank=True,
        help_text="A firer holds it until then; after that another firer may claim it.",
    )
    created_at = models.DateTimeField("created", default=timezone.now)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    class Meta:
        verbose_name = "dialog timer"
        indexes = [
            # "What is due now": only pending rows, so 100k fired rows cost nothing.
            models.Index(
                fields=["due_at"],
                name="botdialogs_timer_due",
                condition=models.Q(status="pending"),
            ),
            # The admin's search by chat or user.
            models.Index(fields=["chat_id"], name="botdialogs_timer_by_chat"),
            models.Index(fields=["user_id"], name="botdialogs_timer_by_user"),
            models.Index(fields=["status", "-due_at"], name="botdialogs_timer_by_status"),
        ]
        constraints = [
            # One pending timer per key and chat: replacing is cancel + insert.
            models.UniqueConstraint(
                fields=["bot_name", "chat_id", "key"],
                condition=models.Q(status="pending") & ~models.Q(key=""),
                name="botdialogs_timer_one_pending_per_key",
            ),
        ]

    def __str__(self) -> str:
        what = self.action.get("action", "?") if isinstance(self.action, dict) else "?"
        return f"{what} for chat {self.chat_id} at {self.due_at:%Y-%m-%d %H:%M:%S}: {self.status}"


class StarPayment(models.Model):
    """A Telegram Stars payment a bot received: recorded once per charge id.

    Inserted by :mod:`botdialogs.payments` in the transaction of the update that carried the
    ``successful_payment`` (with the site's own change, e.g. its order marked paid); a second
    message with the same ``telegram_payment_charge_id`` changes nothing. A refund turns
    ``refund_requested`` (committed before Telegram is asked, so a second click does not ask
    again), then ``refunded`` or ``refund_failed`` with Telegram's answer.
    """

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        REFUND_REQUESTED = "refund_requested", "Refund requested (outcome unknown)"
        REFUNDED = "refunded", "Refunded"
        REFUND_FAILED = "refund_failed", "Refund failed"

    bot_name = models.CharField("bot", max_length=64, help_text="Name in BOTDIALOGS['BOTS'].")
    telegram_payment_charge_id = models.CharField("Telegram charge id", max_length=255)
    provider_payment_charge_id = models.CharField(
        "provider charge id", max_length=255, blank=True, default=""
    )
    invoice_payload = models.CharField(
        "payload", max_length=128, help_text="The invoice's payload: the site's order."
    )
    user_id = models.BigIntegerField("user id")
    chat_id = models.BigIntegerField("chat id")
    total_amount = models.BigIntegerField("amount", help_text="In Stars for currency XTR.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID)
    successful_payment = models.JSONField(help_text="Telegram's successful_payment, as sent.")
    update_id = models.BigIntegerField("update id", help_text="The update that carried it.")
    recorded_by = models.UUIDField(
        help_text="The unit of work that inserted it: the site's change runs only in that one."
    )
    paid_at = models.DateTimeField("paid", default=timezone.now)
    refund_requested_at = models.DateTimeField("refund requested", null=True, blank=True)
    refund_answered_at = models.DateTimeField("refund answered", null=True, blank=True)
    refund_answer = models.TextField(
        "Telegram's refund answer", blank=True, default="", help_text="Its result or error."
    )

    class Meta:
        verbose_name = "Stars payment"
        constraints = [
            models.UniqueConstraint(
                fields=["bot_name", "telegram_payment_charge_id"],
                name="botdialogs_payment_once_per_charge",
            )
        ]
        indexes = [
            # The admin's list filtered by status, newest first.
            models.Index(fields=["status", "-paid_at"], name="botdialogs_payment_by_status"),
            # The site finds the payments of its order.
            models.Index(fields=["invoice_payload"], name="botdialogs_payment_by_payload"),
            models.Index(fields=["user_id"], name="botdialogs_payment_by_user"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.total_amount} {self.currency} from user {self.user_id} "
            f"for {self.invoice_payload!r}: {self.get_status_display()}"
        )

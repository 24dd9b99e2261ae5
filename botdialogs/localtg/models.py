"""Tables of the local Telegram emulator: bots, their chats with simulated users, messages.

All emulator state lives here (no process-local state), so any number of server processes
on any host and port serve the same chats. Each chat has a ``revision`` counter: every
change to one of its messages takes the next revision and stamps the message with it, so a
chat page asks "what changed since revision N".
"""

from __future__ import annotations

from django.db import models


class LocalBot(models.Model):
    """A bot that talks to local Telegram, known by its local token."""

    name = models.CharField(max_length=64, unique=True, help_text="Name in BOTDIALOGS['BOTS'].")
    token = models.CharField(max_length=255, unique=True)
    bot_id = models.BigIntegerField("bot id")
    webhook_url = models.URLField(
        "webhook URL", max_length=1024, blank=True, default="", help_text="Set by setWebhook."
    )
    webhook_secret = models.CharField("webhook secret", max_length=256, blank=True, default="")
    webhook_set = models.BooleanField(
        "webhook set", default=False, help_text="Off: updates go to the default webhook URL."
    )
    allowed_updates = models.JSONField("allowed updates", null=True, blank=True)
    commands = models.JSONField(
        "commands",
        default=dict,
        blank=True,
        help_text='Set by setMyCommands: language code ("" for the default) -> commands.',
    )
    rate_limited = models.BooleanField(
        "enforce rate limits",
        default=False,
        help_text="Answer 429 over 1 message/s per chat or 30/s per bot.",
    )
    next_update_id = models.BigIntegerField("next update id", default=1)
    bucket_tokens = models.FloatField(default=30.0, help_text="Per-bot send budget left.")
    bucket_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "local bot"

    def __str__(self) -> str:
        return f"local bot {self.name}"


class LocalChat(models.Model):
    """A private chat between a local bot and a simulated user (chat id == user id)."""

    bot = models.ForeignKey(LocalBot, on_delete=models.CASCADE, related_name="chats")
    chat_id = models.BigIntegerField("chat id")
    first_name = models.CharField("first name", max_length=255, default="User")
    last_name = models.CharField("last name", max_length=255, blank=True, default="")
    username = models.CharField(max_length=64, blank=True, default="")
    language_code = models.CharField("language", max_length=16, blank=True, default="en")
    blocked_bot = models.BooleanField(
        "blocked the bot", default=False, help_text="The bot's sends get 403 while set."
    )
    revision = models.BigIntegerField(default=0, help_text="Last change in this chat.")
    next_message_id = models.BigIntegerField("next message id", default=1)
    bucket_tokens = models.FloatField(default=3.0, help_text="Per-chat send budget left.")
    bucket_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "local chat"
        constraints = [
            models.UniqueConstraint(fields=["bot", "chat_id"], name="localtg_chat_once_per_bot")
        ]

    def __str__(self) -> str:
        return f"{self.first_name} ({self.chat_id}) with {self.bot.name}"

    def take_message_id(self, *also_saved: str) -> int:
        """The id of this chat's next message, counted on and saved with ``also_saved`` fields.

        Call it on a row locked in the caller's transaction (``select_for_update``), so two
        messages never get one id.
        """
        message_id = self.next_message_id
        self.next_message_id += 1
        self.save(update_fields=[*also_saved, "next_message_id"])
        return message_id


class LocalMessage(models.Model):
    """One message in a local chat, as the bot or the user last left it."""

    chat = models.ForeignKey(LocalChat, on_delete=models.CASCADE, related_name="messages")
    message_id = models.BigIntegerField("message id")
    from_bot = models.BooleanField("sent by the bot", default=False)
    text = models.TextField(blank=True, default="")
    caption = models.TextField(blank=True, default="")
    entities = models.JSONField(
        null=True, blank=True, help_text="Formatting of the text or caption (MessageEntity list)."
    )
    photo_file_id = models.CharField(max_length=255, blank=True, default="")
    document_file_id = models.CharField(max_length=255, blank=True, default="")
    reply_markup = models.JSONField("reply markup", null=True, blank=True)
    callback_data = models.CharField(
        max_length=255, blank=True, default="", help_text="For a button press: its data."
    )
    edit_count = models.PositiveIntegerField("edits", default=0)
    is_deleted = models.BooleanField("deleted", default=False)
    revision = models.BigIntegerField(help_text="Chat revision of the last change.")
    date = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField("edited", null=True, blank=True)

    class Meta:
        verbose_name = "local message"
        constraints = [
            models.UniqueConstraint(
                fields=["chat", "message_id"], name="localtg_message_id_per_chat"
            )
        ]
        indexes = [models.Index(fields=["chat", "revision"], name="localtg_message_changes")]

    def __str__(self) -> str:
        who = "bot" if self.from_bot else "user"
        return f"#{self.message_id} from {who}: {(self.text or self.caption)[:40]}"


class LocalCallbackQuery(models.Model):
    """A button press by a simulated user, and the bot's answer to it."""

    query_id = models.CharField("query id", max_length=64, unique=True)
    chat = models.ForeignKey(LocalChat, on_delete=models.CASCADE, related_name="callback_queries")
    message_id = models.BigIntegerField("message id")
    data = models.CharField(max_length=255)
    answered = models.BooleanField(default=False)
    answer_text = models.TextField("answer", blank=True, default="")
    show_alert = models.BooleanField("alert", default=False)
    revision = models.BigIntegerField(default=0, help_text="Chat revision of the answer.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "local callback query"

    def __str__(self) -> str:
        return f"press {self.data!r} on #{self.message_id}"


class LocalFile(models.Model):
    """A file a bot uploaded: kept so later sends can refer to it by file_id."""

    file_id = models.CharField("file id", max_length=255, unique=True)
    file_unique_id = models.CharField("file unique id", max_length=64)
    kind = models.CharField(max_length=16, help_text='"photo" or "document".')
    file_name = models.CharField("file name", max_length=255, blank=True, default="")
    mime_type = models.CharField("MIME type", max_length=255, blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    content = models.BinaryField(
        null=True,
        blank=True,
        help_text="The uploaded bytes (kept up to a size cap).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "local file"

    def __str__(self) -> str:
        return f"{self.kind} {self.file_id}"


class LocalFault(models.Model):
    """A fault a bot's Bot API calls meet: Telegram answering 5xx, hanging, or flooding (429).

    It lasts for ``calls_left`` calls, until ``until``, or both (whichever ends first); with
    neither it lasts until it is cleared. Set from the user API, the test kit or the chat
    playground (:mod:`botdialogs.localtg.faults`).
    """

    class Kind(models.TextChoices):
        SERVER_ERROR = "server_error", "5xx answer"
        TIMEOUT = "timeout", "no answer in time (the call hangs)"
        FLOOD = "flood", "429 Too Many Requests"

    bot = models.OneToOneField(LocalBot, on_delete=models.CASCADE, related_name="fault")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    methods = models.JSONField(
        default=list, blank=True, help_text="Bot API methods it hits (lower case); empty: all."
    )
    calls_left = models.PositiveIntegerField(
        "calls left", null=True, blank=True, help_text="Calls still to fail; empty: no count."
    )
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: no time limit.")
    status = models.PositiveSmallIntegerField(default=500, help_text="The 5xx code answered.")
    retry_after = models.PositiveIntegerField("retry after", default=5, help_text="Seconds.")
    hang_seconds = models.FloatField(
        "hang", default=65.0, help_text="How long a timed-out call hangs before its 504."
    )
    calls_failed = models.PositiveIntegerField("calls failed", default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "local fault"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.bot.name}"


class LocalInvoice(models.Model):
    """An invoice in Telegram Stars a bot sent (sendInvoice), its pre-checkout and payment.

    Pressing Pay asks the bot (``pre_checkout_query``) and waits for its answer; on ok the
    charge gets a fresh id and the user's ``successful_payment`` is delivered. A charge is
    refunded at most once (refundStarPayment).
    """

    message = models.OneToOneField(LocalMessage, on_delete=models.CASCADE, related_name="invoice")
    title = models.CharField(max_length=32)
    description = models.CharField(max_length=255)
    payload = models.CharField(max_length=128)
    amount = models.PositiveIntegerField(help_text="In Stars.")
    pre_checkout_query_id = models.CharField(max_length=64, blank=True, default="")
    asked_at = models.DateTimeField("pre-checkout asked", null=True, blank=True)
    answered_ok = models.BooleanField("answer", null=True, help_text="None: not answered.")
    error_message = models.TextField(blank=True, default="")
    charge_id = models.CharField("charge id", max_length=64, null=True, blank=True, unique=True)
    paid_at = models.DateTimeField("paid", null=True, blank=True)
    refunded_at = models.DateTimeField("refunded", null=True, blank=True)

    class Meta:
        verbose_name = "local invoice"

    def __str__(self) -> str:
        return f"{self.amount} XTR for {self.payload!r}"

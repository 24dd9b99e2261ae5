"""The demo's "Today's special": a daily broadcast to every chat of the demo bot, sent once
a day however often its task runs (see :class:`~project.shop.models.DailySpecial`)."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from botdialogs.background import broadcast
from botdialogs.models import Broadcast, TelegramChat
from project.shop.models import DailySpecial

#: One dish a weekday, Monday first.
DISHES = ("Pizza", "Soup", "Salad", "Pizza", "Soup", "Salad", "Tea and cake")
#: The dialog each chat is shown (project.bot.dialogs.daily_special).
STATE = "DailySpecial:main"


def dish_of(day: date) -> str:
    """The special of ``day``."""
    return DISHES[day.weekday()]


def todays_special(bot: str = "default", day: date | None = None) -> DailySpecial:
    """The day's special with its broadcast, created by the first caller of the day.

    Two callers at once (two beats, a retry racing the first run) both end with the same
    row: the second one's insert fails on the unique day and it reads the first one's.
    """
    day = day or timezone.now().date()
    found = DailySpecial.objects.filter(day=day).select_related("broadcast").first()
    if found is not None:
        return found
    dish = dish_of(day)
    chats = TelegramChat.objects.filter(chat_type="private")
    try:
        with transaction.atomic():
            sending = broadcast.create(
                chats,
                "start",
                bot=bot,
                state=STATE,
                data={"day": day.isoformat(), "dish": dish},
                show_mode="send",
            )
            return DailySpecial.objects.create(day=day, dish=dish, broadcast=sending)
    except IntegrityError:
        return DailySpecial.objects.select_related("broadcast").get(day=day)


def send_todays_special(bot: str = "default", day: date | None = None) -> Broadcast:
    """Send (or finish sending) the day's special; a chat it reached already gets nothing."""
    special = todays_special(bot, day)
    sent = broadcast.run(special.broadcast_id)
    DailySpecial.objects.filter(pk=special.pk).update(runs=F("runs") + 1)
    return sent

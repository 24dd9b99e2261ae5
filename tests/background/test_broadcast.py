"""Broadcasts against local Telegram enforcing Telegram's rate limits (429) and blocks (403)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from botdialogs.background import broadcast
from botdialogs.engine import bots
from botdialogs.models import BackgroundAction, Broadcast, TelegramChat
from botdialogs.testing import AsgiServer, LocalTelegram, wait_until
from botdialogs.testing.queues import redis_url

pytestmark = pytest.mark.django_db(transaction=True)
FIRST_USER = 8000
CHATS = 200


@pytest.fixture
def telegram(redis_queued_server: AsgiServer, celery_worker: None) -> LocalTelegram:
    return LocalTelegram(redis_queued_server.url)


@pytest.fixture
def limited(
    telegram: LocalTelegram, redis_queued_server: AsgiServer, settings: Any
) -> Iterator[LocalTelegram]:
    """This process's bot talks to the test server; the limiter lives in Redis."""
    values = {
        **settings.BOTDIALOGS,
        "LOCAL_TELEGRAM_URL": redis_queued_server.url,
        "BROADCAST_REDIS_URL": redis_url(),
    }
    with override_settings(BOTDIALOGS=values):
        telegram.set_rate_limits(True)
        try:
            yield telegram
        finally:
            telegram.set_rate_limits(False)


def users(telegram: LocalTelegram, count: int, first: int) -> list[Any]:
    """``count`` users who have talked to the bot: their local chats and TelegramChat rows."""
    from botdialogs.localtg.models import LocalBot, LocalChat

    local_bot, _ = LocalBot.objects.get_or_create(
        name="default",
        defaults={"token": bots.bot_token("default"), "bot_id": bots.local_bot_id("default")},
    )
    ids = [first + n for n in range(count)]
    LocalChat.objects.bulk_create(
        [LocalChat(bot=local_bot, chat_id=i, first_name=f"U{i}") for i in ids]
    )
    TelegramChat.objects.bulk_create(
        [TelegramChat(bot_id=bots.bot_id("default"), chat_id=i, user_id=i) for i in ids]
    )
    return [telegram.chat(user_id=i, first_name=f"U{i}") for i in ids]


def bot_message_count(chat: Any) -> int:
    return len([m for m in chat.messages() if m.from_bot])


def test_broadcast_to_200_chats_stays_under_the_limit(
    limited: LocalTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats = users(limited, CHATS, FIRST_USER)
    before = {chat.user_id: bot_message_count(chat) for chat in chats}
    retries: list[float] = []
    real_pause = broadcast.RedisRateLimiter.pause

    async def pause(self: Any, seconds: float) -> None:
        retries.append(seconds)
        await real_pause(self, seconds)

    monkeypatch.setattr(broadcast.RedisRateLimiter, "pause", pause)
    ids = [FIRST_USER + n for n in range(CHATS)]
    news = broadcast.create(
        TelegramChat.objects.filter(chat_id__in=ids),
        "start",
        state="MainMenu:menu",
        mode="reset_stack",
        show_mode="send",
    )
    started = time.monotonic()
    news = broadcast.run(news.pk)
    elapsed = time.monotonic() - started
    print(
        f"\nbroadcast: {CHATS} chats in {elapsed:.2f}s = {CHATS / elapsed:.1f} msg/s, "
        f"429s: {len(retries)}"
    )
    assert (news.status, news.sent, news.failed, news.skipped) == ("done", CHATS, 0, 0)
    assert not retries, "the limiter kept under Telegram's limit"
    assert CHATS / elapsed <= 30
    for chat in chats:
        assert bot_message_count(chat) == before[chat.user_id] + 1  # none lost, none twice
    # Run again (a retried task): nothing is sent twice.
    assert broadcast.run(news.pk).sent == CHATS
    news.status = Broadcast.Status.RUNNING
    news.save()
    assert broadcast.run(news.pk).sent == CHATS
    assert sum(bot_message_count(c) for c in chats) == sum(before.values()) + CHATS


def test_too_fast_broadcast_honours_429_and_loses_none(
    limited: LocalTelegram, settings: Any
) -> None:
    chats = users(limited, 60, FIRST_USER + 1000)
    ids = [c.user_id for c in chats]
    with override_settings(BOTDIALOGS={**settings.BOTDIALOGS, "BROADCAST_RATE": 200.0}):
        news = broadcast.create(
            TelegramChat.objects.filter(chat_id__in=ids),
            "start",
            state="MainMenu:menu",
            mode="reset_stack",
            show_mode="send",
        )
        news = broadcast.run(news.pk)
    assert (news.sent, news.failed) == (60, 0)
    done = BackgroundAction.objects.filter(broadcast=news, status="done")
    assert done.count() == 60


def test_a_403_marks_a_chat_blocked_and_later_broadcasts_skip_it(limited: LocalTelegram) -> None:
    from botdialogs.localtg.models import LocalChat

    chats = users(limited, 5, FIRST_USER + 2000)
    ids = [c.user_id for c in chats]
    # Blocked without Telegram telling the bot (its my_chat_member was lost): sends get 403.
    LocalChat.objects.filter(chat_id__in=ids[:2]).update(blocked_bot=True)
    news = broadcast.create(
        TelegramChat.objects.filter(chat_id__in=ids), "start", state="MainMenu:menu"
    )
    news = broadcast.run(news.pk)
    assert (news.sent, news.failed, news.skipped) == (3, 2, 0)
    assert set(
        TelegramChat.objects.filter(is_blocked=True, chat_id__in=ids).values_list(
            "chat_id", flat=True
        )
    ) == {ids[0], ids[1]}
    again = broadcast.create(
        TelegramChat.objects.filter(chat_id__in=ids), "start", state="MainMenu:menu"
    )
    assert again.total == 5
    again = broadcast.run(again.pk)
    assert (again.sent, again.failed, again.skipped) == (3, 0, 2)


def test_a_block_telegram_announces_is_skipped_without_a_send(limited: LocalTelegram) -> None:
    chats = users(limited, 5, FIRST_USER + 2500)
    ids = [c.user_id for c in chats]
    for chat in chats[:2]:
        assert chat.block() == 200  # my_chat_member, queued to the Celery worker
    wait_until(
        lambda: TelegramChat.objects.filter(chat_id__in=ids[:2], is_blocked=True).count() == 2,
        timeout=60,
    )
    before = [bot_message_count(chat) for chat in chats]
    news = broadcast.create(
        TelegramChat.objects.filter(chat_id__in=ids), "start", state="MainMenu:menu"
    )
    news = broadcast.run(news.pk)
    assert (news.sent, news.failed, news.skipped) == (3, 0, 2)
    after = [bot_message_count(chat) for chat in chats]
    assert [a - b for a, b in zip(after, before, strict=True)] == [0, 0, 1, 1, 1]


@pytest.fixture
def inline_telegram(inline_server: AsgiServer, settings: Any) -> Iterator[LocalTelegram]:
    """This process's bot talks to the inline server, where a my_chat_member is handled
    before the user's block call returns."""
    values = {**settings.BOTDIALOGS, "LOCAL_TELEGRAM_URL": inline_server.url}
    # The limiter in this process (the demo shares REDIS_URL's when there is one).
    values["BROADCAST_REDIS_URL"] = ""
    with override_settings(BOTDIALOGS=values):
        yield LocalTelegram(inline_server.url)


def test_a_chat_that_blocks_the_bot_during_a_broadcast_is_skipped(
    inline_telegram: LocalTelegram,
) -> None:
    count = broadcast.CONCURRENCY * 2
    chats = users(inline_telegram, count, FIRST_USER + 4000)
    last = chats[-1]
    blocked: list[int] = []

    def progress(news: Broadcast) -> None:
        # The first chat is reached: the others in flight were taken, the last one was not.
        if not blocked:
            blocked.append(last.block())

    news = broadcast.create(
        TelegramChat.objects.filter(chat_id__in=[c.user_id for c in chats]),
        "start",
        state="MainMenu:menu",
    )
    news = broadcast.run(news.pk, progress=progress)
    assert blocked == [200]
    assert (news.sent, news.failed, news.skipped) == (count - 1, 0, 1)
    assert bot_message_count(last) == 0
    assert TelegramChat.objects.get(chat_id=last.user_id).is_blocked


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "flood", "calls": 2, "retry_after": 1},
        {"kind": "server_error", "calls": 2},
        {"kind": "server_error", "calls": 1, "status": 502},
    ],
    ids=["429-retry-after", "500", "502"],
)
def test_a_broadcast_meeting_telegram_faults_reaches_every_chat_once(
    inline_telegram: LocalTelegram, fault: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botdialogs.localtg.models import LocalFault

    chats = users(inline_telegram, 4, FIRST_USER + 4100)
    pauses: list[float] = []
    real_pause = broadcast.LocalRateLimiter.pause

    async def pause(self: Any, seconds: float) -> None:
        pauses.append(seconds)
        await real_pause(self, seconds)

    monkeypatch.setattr(broadcast.LocalRateLimiter, "pause", pause)
    inline_telegram.set_fault(**fault)
    news = broadcast.create(
        TelegramChat.objects.filter(chat_id__in=[c.user_id for c in chats]),
        "start",
        state="MainMenu:menu",
        show_mode="send",
    )
    news = broadcast.run(news.pk)
    assert (news.sent, news.failed, news.skipped) == (4, 0, 0)
    assert LocalFault.objects.get().calls_failed == fault["calls"]
    # A 429's retry_after pauses the whole bot; a 5xx only retries its chat.
    assert pauses == ([1] * fault["calls"] if fault["kind"] == "flood" else [])
    assert [bot_message_count(chat) for chat in chats] == [1, 1, 1, 1]


def test_broadcast_command_shows_progress(limited: LocalTelegram, capsys: Any) -> None:
    chats = users(limited, 3, FIRST_USER + 3000)
    for chat in chats:
        call_command("broadcast", "start", "--state", "MainMenu:menu", "--chat", str(chat.user_id))
    out = capsys.readouterr().out
    assert "[##############################] 1/1 sent 1 failed 0 skipped 0" in out
    assert "done: 1 sent, 0 failed, 0 skipped of 1" in out


def test_local_limiter_spaces_sends() -> None:
    import asyncio

    limiter = broadcast.LocalRateLimiter(rate=50)

    async def burst() -> float:
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire(n) for n in range(26)))
        return time.monotonic() - started

    assert asyncio.run(burst()) >= 0.49


def test_admin_lists_broadcast_progress(admin_client: Any) -> None:
    news = Broadcast.objects.create(
        bot_name="default", action={"action": "update"}, total=4, sent=2, failed=1
    )
    page = admin_client.get("/admin/botdialogs/broadcast/").content.decode()
    assert '<progress value="3" max="4"></progress> 3/4 (75%)' in page
    assert admin_client.get(f"/admin/botdialogs/broadcast/{news.pk}/change/").status_code == 200
    assert admin_client.get("/admin/botdialogs/backgroundaction/").status_code == 200

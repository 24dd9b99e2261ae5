"""Periodic jobs on django-celery-beat: the demo's daily special, registered with beat's
DatabaseScheduler (seen and edited in the admin's Periodic tasks) and sent by a real worker
once a day, however often it runs."""

from __future__ import annotations

import pytest
from celery.schedules import crontab
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from botdialogs.models import Broadcast
from botdialogs.testing import AsgiServer, CeleryBeat, CeleryWorker, LocalChatClient, wait_until
from botdialogs.testing.databases import wait_for_quiet_database
from project.shop import specials
from project.shop.models import DailySpecial
from project.shop.tasks import send_daily_special
from tests.background.test_background_workers import TIMEOUT, celery_sender, started_chat

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["celery_sender"]  # a fixture of this module's tests


def test_the_daily_special_is_a_beat_entry_at_9_utc_that_beat_puts_in_the_admin(
    redis_env: dict[str, str], transactional_db: None
) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["demo-daily-special"]
    assert entry == {"task": "shop.send_daily_special", "schedule": crontab(minute=0, hour=9)}
    assert settings.TIME_ZONE == "UTC"

    with CeleryBeat("project", env=redis_env):  # DatabaseScheduler syncs the schedule on start
        wait_until(PeriodicTask.objects.filter(name="demo-daily-special").exists, timeout=TIMEOUT)
    task = PeriodicTask.objects.select_related("crontab").get(name="demo-daily-special")
    assert (task.task, task.enabled, task.interval) == ("shop.send_daily_special", True, None)
    assert task.crontab is not None
    when = (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month)
    assert when == ("0", "9", "*") and str(task.crontab.timezone) == "UTC"


def specials_seen(chat: LocalChatClient) -> list[str]:
    return [m.text for m in chat.bot_messages() if m.text.startswith("Today's special:")]


def test_the_daily_special_reaches_every_chat_once_however_often_it_runs(
    redis_queued_server: AsgiServer,
    redis_env: dict[str, str],
    transactional_db: None,
    celery_sender: None,
) -> None:
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    try:
        with CeleryWorker("project", env=env):
            chats = [started_chat(redis_queued_server, user) for user in (9701, 9702, 9703)]
            send_daily_special.delay()
            wait_until(lambda: DailySpecial.objects.filter(runs=1).exists(), timeout=TIMEOUT)
            special = DailySpecial.objects.get()
            shown = f"Today's special: {specials.dish_of(special.day)}"
            for chat in chats:
                chat.wait_for_text(shown, timeout=TIMEOUT)
            # The same day again (a second beat, a retry): it finds the day's broadcast,
            # which every chat has had.
            send_daily_special.delay()
            wait_until(lambda: DailySpecial.objects.filter(runs=2).exists(), timeout=TIMEOUT)
    finally:
        wait_for_quiet_database()

    assert DailySpecial.objects.count() == 1 and Broadcast.objects.count() == 1
    sent = Broadcast.objects.get()
    assert (sent.status, sent.total, sent.sent, sent.failed) == ("done", 3, 3, 0)
    for chat in chats:
        assert specials_seen(chat) == [shown]
        assert chat.last() is not None and chat.last().buttons == [["Order food"], ["Not today"]]


def test_a_second_run_the_same_day_finds_the_days_special(transactional_db: None) -> None:
    first = specials.todays_special()
    second = specials.todays_special()
    assert first.pk == second.pk and Broadcast.objects.count() == 1


def test_a_run_that_loses_the_race_for_the_day_takes_the_winners_special(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = specials.todays_special()
    real_filter = DailySpecial.objects.filter
    # This run looked before the winner committed: it saw no row, and its insert then
    # fails on the unique day.
    monkeypatch.setattr(DailySpecial.objects, "filter", lambda **kw: real_filter(pk=-1))
    loser = specials.todays_special()
    assert loser.pk == winner.pk and loser.broadcast_id == winner.broadcast_id
    assert Broadcast.objects.count() == 1  # the loser's broadcast rolled back with its insert

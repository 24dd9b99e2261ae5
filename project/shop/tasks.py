"""Celery tasks of the demo shop (found by the Celery app's autodiscovery)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="shop.send_daily_special", ignore_result=True)
def send_daily_special() -> dict[str, object]:
    """Send today's special to every chat of the demo bot, once a day however often it runs
    (beat runs it daily at 09:00 UTC: ``CELERY_BEAT_SCHEDULE["demo-daily-special"]``)."""
    from project.shop.specials import send_todays_special

    sent = send_todays_special()
    return {"broadcast": sent.pk, "status": sent.status, "sent": sent.sent}

"""``celery -A tests.timers_celery worker``: the demo's Celery app, with the dialog timers'
retry delays cut to fractions of a second, so a test sees a timer retried then failed by
real workers within seconds (the production delays are minutes)."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready

from project.celery import app

__all__ = ["RETRY_DELAYS", "app"]

#: Seconds before attempts 2 and 3; the third failure marks the timer failed.
RETRY_DELAYS = (0.5, 1.0)


@worker_ready.connect
def _short_retry_delays(**_kwargs: Any) -> None:
    # Django is set up by now (the firing module imports models).
    from botdialogs.timers import firing

    firing.RETRY_DELAYS = RETRY_DELAYS

"""Celery tasks of botdialogs: thin wrappers that cross into async and call one function."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from botdialogs.sync import run_async


@shared_task(name="botdialogs.process_update", ignore_result=True)
def process_update(bot_name: str, raw_update: dict[str, Any]) -> None:
    """Handle one queued webhook update (its update_id was taken by the webhook view)."""
    from botdialogs import webhook

    run_async(webhook.process_update, bot_name, raw_update)

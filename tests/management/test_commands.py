"""Webhook management commands, against local Telegram on a real server."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from botdialogs.localtg.models import LocalBot
from botdialogs.testing import AsgiServer, LocalTelegram

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def talking_to(server: AsgiServer, **bot: Any) -> dict[str, Any]:
    """The demo settings, with this process's bots calling the server's local Telegram."""
    bots = {"default": {**settings.BOTDIALOGS["BOTS"]["default"], **bot}}
    return {**settings.BOTDIALOGS, "BOTS": bots, "LOCAL_TELEGRAM_URL": server.url}


def test_setwebhook_webhookinfo_deletewebhook(inline_server: AsgiServer) -> None:
    url = f"{inline_server.url}/bots/default/webhook/"
    with override_settings(BOTDIALOGS=talking_to(inline_server, WEBHOOK_SECRET="s3")):
        said = run("setwebhook", "default", "--url", url, "--drop-pending-updates")
        kinds = "business_message, callback_query, message, my_chat_member"
        assert f"Allowed updates: {kinds}\n" in said
        local = LocalBot.objects.get(name="default")
        assert (local.webhook_url, local.webhook_secret) == (url, "s3")
        assert "message" in local.allowed_updates
        # The demo's routers do not handle it, but botdialogs learns of blocks from it.
        assert "my_chat_member" in local.allowed_updates
        assert json.loads(run("webhookinfo", "default"))["url"] == url

        run("deletewebhook", "default")
        assert json.loads(run("webhookinfo", "default"))["url"] == ""


def test_setwebhook_uses_configured_allowed_updates(inline_server: AsgiServer) -> None:
    with override_settings(BOTDIALOGS=talking_to(inline_server, ALLOWED_UPDATES=["message"])):
        run("setwebhook", "default", "--url", "https://example.com/hook/")
    # botdialogs adds the type it learns of blocks from (docs/topics/updates.md).
    assert LocalBot.objects.get(name="default").allowed_updates == ["message", "my_chat_member"]


def test_a_set_webhook_is_where_local_telegram_delivers(inline_server: AsgiServer) -> None:
    # With the server's own secret the demo still answers through the URL that was set.
    url = f"{inline_server.url}/bots/default/webhook/"
    from tests.support.servers import WEBHOOK_SECRET

    with override_settings(BOTDIALOGS=talking_to(inline_server, WEBHOOK_SECRET=WEBHOOK_SECRET)):
        run("setwebhook", "default", "--url", url)
    chat = LocalTelegram(inline_server.url).chat(user_id=7001, first_name="Gus")
    assert chat.send("/start")["webhook_status"] == 200
    chat.wait_for_text("Hello, Gus! What would you like to do?")


def test_unknown_bots_and_local_polling_are_refused() -> None:
    with pytest.raises(CommandError, match="No bot named 'nobody'"):
        run("webhookinfo", "nobody")
    with pytest.raises(CommandError, match="nothing to poll"):
        run("runbot", "default")

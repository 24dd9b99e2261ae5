"""Repairs a support person runs from the admin: asked first, said exactly, and the user's chat
left matching the database. Also whose rows they are, and pages with nothing to save."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiogram.methods import EditMessageReplyMarkup, EditMessageText, SendMessage
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import include, path, reverse
from django.utils import timezone

from botdialogs import background
from botdialogs.admin.repair import RESET_NOTICE
from botdialogs.background import transport
from botdialogs.engine.bots import bot_id
from botdialogs.models import (
    BackgroundAction,
    Broadcast,
    DialogContext,
    DialogStack,
    DialogTimer,
    TelegramChat,
)
from botdialogs.testing import RecordingSession, recording_bots

pytestmark = pytest.mark.django_db(transaction=True)

USER = 1001
INLINE = {**settings.BOTDIALOGS, "BACKGROUND": "inline"}


def playground_chat(request: Any, name: str, chat_id: int) -> HttpResponse:
    return HttpResponse(f"{name} {chat_id}")


# A site that mounts a chat playground page (ROOT_URLCONF of the tests that need it).
urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "localtg/",
        include(
            ([path("chats/<str:name>/<int:chat_id>/", playground_chat, name="chat")], "localtg")
        ),
    ),
]


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    """Bots built by the registry record their Bot API calls; background actions run inline."""
    with recording_bots() as recording, override_settings(BOTDIALOGS=INLINE):
        yield recording


@pytest.fixture
def ann(session: RecordingSession) -> DialogStack:
    """Ann in the food order dialog, over the main menu, as the demo bot left her."""
    TelegramChat.objects.create(
        bot_id=bot_id("default"),
        chat_id=USER,
        user_id=USER,
        first_name="Ann",
        last_name="Smith",
        username="ann_s",
    )
    background.start("default", USER, USER, "MainMenu:menu")
    background.start("default", USER, USER, "FoodOrder:hungry")
    stack = DialogStack.objects.get(chat_id=USER)
    assert (stack.depth, stack.state) == (2, "FoodOrder:hungry")
    session.calls.clear()
    return stack


def changelist(model: type) -> str:
    return reverse(f"admin:botdialogs_{model._meta.model_name}_changelist")


def act(client: Client, model: type, action: str, pks: list[int], **extra: str) -> Any:
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], **extra}
    return client.post(changelist(model), data, follow=True)


def said(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# -- asked first ------------------------------------------------------------------------------
def test_close_top_asks_first_and_changes_nothing_until_confirmed(
    admin_client: Client, ann: DialogStack, session: RecordingSession
) -> None:
    page = act(admin_client, DialogStack, "close_top", [ann.pk])
    html = page.content.decode()

    assert page.templates[0].name == "botdialogs/admin/repair_confirmation.html"
    assert "Ann Smith (chat 1001): closes dialog FoodOrder (FoodOrder:hungry); " in html
    assert "MainMenu:menu is shown again" in html
    assert 'name="post" value="yes"' in html and "csrfmiddlewaretoken" in html
    # Neither the question nor a GET changed anything.
    admin_client.get(changelist(DialogStack), {"action": "close_top", "_selected_action": ann.pk})
    act(admin_client, DialogStack, "close_top", [ann.pk], post="no")
    ann.refresh_from_db()
    assert (ann.depth, ann.state) == (2, "FoodOrder:hungry")
    assert session.calls == []


def test_reset_asks_first(admin_client: Client, ann: DialogStack) -> None:
    page = act(admin_client, DialogStack, "reset_dialogs", [ann.pk])

    html = page.content.decode()
    assert "Ann Smith (chat 1001): deletes the stack with 2 open dialogs" in html
    assert DialogStack.objects.filter(pk=ann.pk).exists()


# -- close the top dialog ---------------------------------------------------------------------
def test_close_top_shows_the_dialog_below_in_the_chat(
    admin_client: Client, ann: DialogStack, session: RecordingSession
) -> None:
    response = act(admin_client, DialogStack, "close_top", [ann.pk], post="yes")

    assert response.redirect_chain[-1][0] == changelist(DialogStack)
    assert said(response) == [
        "Closed dialog FoodOrder for Ann Smith (chat 1001); now showing MainMenu:menu"
    ]
    ann.refresh_from_db()
    assert (ann.depth, ann.state) == (1, "MainMenu:menu")
    assert DialogContext.objects.filter(stack=ann).count() == 1
    # The user's chat shows the main menu again, in their dialog message.
    shown = [c for c in session.calls if isinstance(c, EditMessageText | SendMessage)]
    assert shown and "Order food" in str(shown[-1].reply_markup)
    # Performed as a background action: recorded, once.
    record = BackgroundAction.objects.get(chat_id=USER, action="done")
    assert (record.status, record.attempts) == ("done", 1)


def test_close_top_twice_closes_the_last_dialog_then_refuses(
    admin_client: Client, ann: DialogStack, session: RecordingSession
) -> None:
    act(admin_client, DialogStack, "close_top", [ann.pk], post="yes")
    last = act(admin_client, DialogStack, "close_top", [ann.pk], post="yes")
    assert said(last) == [
        "Closed dialog MainMenu for Ann Smith (chat 1001); no dialog is open now "
        "(their last message's keyboard was removed)."
    ]
    assert any(isinstance(c, EditMessageReplyMarkup) for c in session.calls)
    stack = DialogStack.objects.filter(pk=ann.pk).first()
    assert stack is None or (stack.depth, stack.intents) == (0, [])

    session.calls.clear()
    again = act(admin_client, DialogStack, "close_top", [ann.pk], post="yes")
    if stack is not None:
        assert said(again) == ["Nothing to close for Ann Smith (chat 1001): no dialog is open."]
        page = act(admin_client, DialogStack, "close_top", [ann.pk])
        assert "left as is" in page.content.decode()
        assert 'value="Yes, close it"' not in page.content.decode()
    assert session.calls == []


def test_close_top_refuses_an_empty_stack(admin_client: Client, session: RecordingSession) -> None:
    TelegramChat.objects.create(bot_id=bot_id("default"), chat_id=7, user_id=7, username="bob")
    empty = DialogStack.objects.create(bot_id=bot_id("default"), chat_id=7, user_id=7)

    response = act(admin_client, DialogStack, "close_top", [empty.pk], post="yes")

    assert said(response) == ["Nothing to close for @bob (chat 7): no dialog is open."]
    empty.refresh_from_db()
    assert (empty.depth, empty.state, empty.intents) == (0, "", [])
    assert session.calls == []


def test_close_top_of_a_stack_the_bot_code_no_longer_knows_repairs_the_rows_only(
    admin_client: Client, session: RecordingSession
) -> None:
    bot = bot_id("default")
    stack = DialogStack.objects.create(
        bot_id=bot, chat_id=7, user_id=7, intents=["a", "b"], depth=2, state="Gone:away"
    )
    for intent, state in (("a", "MainMenu:menu"), ("b", "Gone:away")):
        DialogContext.objects.create(
            bot_id=bot, chat_id=7, user_id=7, intent_id=intent, stack=stack, state=state
        )

    response = act(admin_client, DialogStack, "close_top", [stack.pk], post="yes")

    assert said(response) == [
        "Closed dialog Gone for user 7 (chat 7) in the database only (this site's bot code "
        "does not know its states); now at MainMenu:menu. Their chat was not updated: their "
        "next message or press goes to the dialog below."
    ]
    stack.refresh_from_db()
    assert (stack.intents, stack.state) == (["a"], "MainMenu:menu")
    assert session.calls == []


def test_close_top_with_a_queued_backend_says_it_is_queued(
    admin_client: Client, ann: DialogStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(transport, "deliver", sent.append)  # a broker with no worker yet

    response = act(admin_client, DialogStack, "close_top", [ann.pk], post="yes")

    (action,) = sent
    assert said(response) == [
        f"Closing dialog FoodOrder for Ann Smith (chat 1001): queued as background action "
        f"{action['id']}; then MainMenu:menu is shown."
    ]
    assert action["action"] == "done" and action["chat_id"] == USER


def test_close_top_confirmed_twice_closes_one_dialog(
    admin_client: Client, ann: DialogStack
) -> None:
    page = act(admin_client, DialogStack, "close_top", [ann.pk])
    top = ann.intents[-1]
    assert f'name="expect-{ann.pk}" value="{top}"' in page.content.decode()
    confirmed = {"post": "yes", f"expect-{ann.pk}": top}

    first = act(admin_client, DialogStack, "close_top", [ann.pk], **confirmed)
    second = act(admin_client, DialogStack, "close_top", [ann.pk], **confirmed)

    assert said(first) == [
        "Closed dialog FoodOrder for Ann Smith (chat 1001); now showing MainMenu:menu"
    ]
    assert said(second) == [
        "Nothing closed for Ann Smith (chat 1001): it was closed already "
        "(now showing MainMenu:menu)."
    ]
    ann.refresh_from_db()
    assert (ann.depth, ann.state) == (1, "MainMenu:menu")
    assert BackgroundAction.objects.filter(action="done").count() == 1


# -- reset ------------------------------------------------------------------------------------
def test_reset_removes_the_old_keyboard_and_tells_the_user(
    admin_client: Client, ann: DialogStack, session: RecordingSession
) -> None:
    last_message = ann.last_message_id
    assert last_message is not None

    response = act(admin_client, DialogStack, "reset_dialogs", [ann.pk], post="yes")

    assert said(response) == [
        "Reset dialogs for Ann Smith (chat 1001): deleted 1 stack with 2 dialogs; removed the "
        f'buttons of their last message, sent them "{RESET_NOTICE}"'
    ]
    assert not DialogStack.objects.filter(chat_id=USER).exists()
    assert not DialogContext.objects.filter(chat_id=USER).exists()
    edit, notice = session.calls
    assert isinstance(edit, EditMessageReplyMarkup)
    assert (edit.message_id, edit.reply_markup) == (last_message, None)
    assert isinstance(notice, SendMessage) and (notice.chat_id, notice.text) == (USER, RESET_NOTICE)


def test_reset_from_the_chat_page(
    admin_client: Client, ann: DialogStack, session: RecordingSession
) -> None:
    chat = TelegramChat.objects.get(chat_id=USER)
    question = act(admin_client, TelegramChat, "reset_dialogs", [chat.pk])
    assert "deletes 1 stack with 2 open dialogs" in question.content.decode()

    response = act(admin_client, TelegramChat, "reset_dialogs", [chat.pk], post="yes")

    assert said(response)[0].startswith(
        "Reset dialogs for Ann Smith (chat 1001): deleted 1 stack with 2 dialogs;"
    )
    assert not DialogStack.objects.filter(chat_id=USER).exists()
    again = act(admin_client, TelegramChat, "reset_dialogs", [chat.pk], post="yes")
    assert said(again) == ["Nothing to reset for Ann Smith (chat 1001): no dialog stack."]


# -- whose rows -------------------------------------------------------------------------------
@override_settings(ROOT_URLCONF=__name__)
def test_stack_page_names_the_user_and_links_their_chats(
    admin_client: Client, ann: DialogStack
) -> None:
    chat = TelegramChat.objects.get(chat_id=USER)
    page = admin_client.get(reverse("admin:botdialogs_dialogstack_change", args=[ann.pk]))
    html = page.content.decode()

    assert "Ann Smith" in html and "@ann_s" in html
    assert reverse("admin:botdialogs_telegramchat_change", args=[chat.pk]) in html
    assert f'href="/localtg/chats/default/{USER}/"' in html
    assert "updated at most every 5 min" in html and " ago)" in html
    assert "<h2>Ann Smith (chat 1001): FoodOrder:hungry</h2>" in html
    contexts = admin_client.get(changelist(DialogContext)).content.decode()
    assert contexts.count("Ann Smith</a> @ann_s") == 2
    context = DialogContext.objects.filter(stack=ann).first()
    assert context is not None
    context_page = admin_client.get(
        reverse("admin:botdialogs_dialogcontext_change", args=[context.pk])
    ).content.decode()
    assert "Ann Smith" in context_page and f"/localtg/chats/default/{USER}/" in context_page
    chats = admin_client.get(changelist(TelegramChat)).content.decode()
    assert "last seen (updated at most every 5 min)" in chats.lower()
    listing = admin_client.get(changelist(DialogStack)).content.decode()
    assert "Ann Smith" in listing and "@ann_s" in listing
    # The top state names the dialog; one bot and the default stack need no column.
    assert 'class="field-dialog"><a href=' in listing and ">FoodOrder:hungry</a>" in listing
    assert "field-bot" not in listing and "field-stack" not in listing


@override_settings(ROOT_URLCONF=__name__)
def test_the_demo_stack_page_links_the_real_chat_playground(
    admin_client: Client, ann: DialogStack
) -> None:
    html = admin_client.get(
        reverse("admin:botdialogs_dialogstack_change", args=[ann.pk])
    ).content.decode()

    chat_page = reverse("localtg:chat", kwargs={"name": "default", "chat_id": USER})
    assert f'href="{chat_page}"' in html
    assert admin_client.get(chat_page).status_code == 200


def test_no_playground_link_for_a_bot_with_a_token(admin_client: Client, ann: DialogStack) -> None:
    real = {"default": {**settings.BOTDIALOGS["BOTS"]["default"], "TOKEN": "42:real-token"}}
    with override_settings(BOTDIALOGS={**INLINE, "BOTS": real}):
        stack = DialogStack.objects.create(bot_id=42, chat_id=USER, user_id=USER)
        TelegramChat.objects.create(bot_id=42, chat_id=USER, user_id=USER, first_name="Ann")
        html = admin_client.get(
            reverse("admin:botdialogs_dialogstack_change", args=[stack.pk])
        ).content.decode()
    assert "Ann" in html and "/localtg/chats/" not in html


@override_settings(ROOT_URLCONF="tests.sites.admin_only_urls")
def test_no_playground_link_when_the_site_has_no_playground_page(
    admin_client: Client, ann: DialogStack
) -> None:
    html = admin_client.get(
        reverse("admin:botdialogs_dialogstack_change", args=[ann.pk])
    ).content.decode()
    assert "Ann Smith" in html and "chat playground" not in html


# -- read-only pages --------------------------------------------------------------------------
def test_pages_with_nothing_to_edit_have_no_save_button(
    admin_client: Client, ann: DialogStack
) -> None:
    action = BackgroundAction.objects.first()
    assert action is not None
    timer = DialogTimer.objects.create(
        id="t1", bot_name="default", user_id=USER, chat_id=USER, due_at=timezone.now(), action={}
    )
    broadcast = Broadcast.objects.create(bot_name="default", action={})
    for url in (
        reverse("admin:botdialogs_dialogstack_change", args=[ann.pk]),
        reverse("admin:botdialogs_backgroundaction_change", args=[action.pk]),
        reverse("admin:botdialogs_dialogtimer_change", args=[timer.pk]),
        reverse("admin:botdialogs_broadcast_change", args=[broadcast.pk]),
    ):
        html = admin_client.get(url).content.decode()
        assert 'name="_save"' not in html, url
        assert "deletelink" not in html, url
    context = DialogContext.objects.filter(stack=ann).first()
    assert context is not None
    editable = reverse("admin:botdialogs_dialogcontext_change", args=[context.pk])
    assert 'name="_save"' in admin_client.get(editable).content.decode()


def test_stack_page_offers_the_repairs(admin_client: Client, ann: DialogStack) -> None:
    html = admin_client.get(
        reverse("admin:botdialogs_dialogstack_change", args=[ann.pk])
    ).content.decode()
    assert 'value="close_top"' in html and 'value="reset_dialogs"' in html


# -- background actions -----------------------------------------------------------------------
def test_inline_background_actions_are_listed_with_their_outcome(
    admin_client: Client, ann: DialogStack
) -> None:
    html = admin_client.get(changelist(BackgroundAction)).content.decode()
    ids = list(BackgroundAction.objects.values_list("action_id", "status"))

    assert len(ids) == 2 and {status for _, status in ids} == {"done"}
    for action_id, _ in ids:
        assert action_id in html
    assert ">start MainMenu:menu<" in html and ">start FoodOrder:hungry<" in html

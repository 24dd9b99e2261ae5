"""The admin: inspecting and repairing chats, dialog stacks, contexts and FSM records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from botdialogs.admin import big_tables as admin_lists
from botdialogs.admin import repair
from botdialogs.engine.bots import bot_id
from botdialogs.models import DialogContext, DialogStack, FsmRecord, TelegramChat
from botdialogs.storage.isolation import advisory_key, chat_lock_name

pytestmark = pytest.mark.django_db

OTHER_BOT = 123456


@pytest.fixture
def bot() -> int:
    return bot_id("default")


def url(model: type, view: str = "changelist", *args: Any) -> str:
    return reverse(f"admin:botdialogs_{model._meta.model_name}_{view}", args=args)


def make_stack(
    bot: int, chat_id: int, states: list[str], thread_id: int = 0, **data: Any
) -> DialogStack:
    """A stack of one context per state, bottom to top, like DjangoStorage writes it."""
    topic = f"t{thread_id}" if thread_id else ""
    intents = [f"c{chat_id}{topic}i{n}" for n in range(len(states))]
    stack = DialogStack.objects.create(
        bot_id=bot,
        chat_id=chat_id,
        user_id=chat_id,
        thread_id=thread_id,
        intents=intents,
        depth=len(intents),
        state=states[-1] if states else "",
    )
    for intent, state in zip(intents, states, strict=True):
        DialogContext.objects.create(
            bot_id=bot,
            chat_id=chat_id,
            user_id=chat_id,
            thread_id=thread_id,
            intent_id=intent,
            stack=stack,
            aiogd_stack_id="",
            state=state,
            dialog_data=data,
        )
    return stack


def listed(response: Any) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def chat_ids(response: Any) -> set[int]:
    return {row.chat_id for row in listed(response)}


# -- lists -----------------------------------------------------------------------------------
def test_admin_lists_render_and_show_the_current_state(admin_client: Client, bot: int) -> None:
    make_stack(bot, 111, ["MainMenu:menu", "FoodOrder:cart"])
    FsmRecord.objects.create(bot_id=bot, chat_id=111, user_id=111, state="Plain:waiting")
    TelegramChat.objects.create(bot_id=bot, chat_id=111, user_id=111, username="alice")

    stacks = admin_client.get(url(DialogStack)).content.decode()
    contexts = admin_client.get(url(DialogContext)).content.decode()
    fsm = admin_client.get(url(FsmRecord)).content.decode()
    chats = admin_client.get(url(TelegramChat)).content.decode()

    assert "FoodOrder:cart" in stacks and "default" in stacks  # top state, bot name
    assert "MainMenu:menu" in contexts and "FoodOrder:cart" in contexts
    assert "Plain:waiting" in fsm
    assert "@alice in chat 111" in chats


def test_admin_stack_page_shows_its_contexts_with_pretty_json(
    admin_client: Client, bot: int
) -> None:
    stack = make_stack(bot, 111, ["MainMenu:menu", "FoodOrder:cart"], cart={"pizza": 2})

    page = admin_client.get(url(DialogStack, "change", stack.pk)).content.decode()

    assert "c111i0" in page and "c111i1" in page
    assert "&quot;cart&quot;: {\n    &quot;pizza&quot;: 2" in page  # indented, read-only
    assert 'name="intents"' not in page and 'name="state"' not in page


def test_admin_search_by_user_id_and_chat_id(admin_client: Client, bot: int) -> None:
    make_stack(bot, 111, ["MainMenu:menu"])
    make_stack(bot, -100222, ["MainMenu:menu"])
    DialogStack.objects.filter(chat_id=-100222).update(user_id=333)

    assert chat_ids(admin_client.get(url(DialogStack), {"q": "111"})) == {111}
    assert chat_ids(admin_client.get(url(DialogStack), {"q": "-100222"})) == {-100222}
    assert chat_ids(admin_client.get(url(DialogStack), {"q": "333"})) == {-100222}
    assert chat_ids(admin_client.get(url(DialogContext), {"q": "111"})) == {111}


def test_admin_search_by_username(admin_client: Client, bot: int) -> None:
    TelegramChat.objects.create(bot_id=bot, chat_id=111, user_id=111, username="alice")
    TelegramChat.objects.create(bot_id=bot, chat_id=222, user_id=222, username="bob")
    make_stack(bot, 111, ["MainMenu:menu"])
    make_stack(bot, 222, ["MainMenu:menu"])
    FsmRecord.objects.create(bot_id=bot, chat_id=222, user_id=222, state="S:s")

    assert chat_ids(admin_client.get(url(TelegramChat), {"q": "alice"})) == {111}
    assert chat_ids(admin_client.get(url(DialogStack), {"q": "@alice"})) == {111}
    assert chat_ids(admin_client.get(url(FsmRecord), {"q": "bob"})) == {222}


@pytest.mark.parametrize("model", [DialogStack, DialogContext, FsmRecord, TelegramChat])
@pytest.mark.parametrize("term", ["hello world", "12abc", "99999999999999999999999", "%_'"])
def test_admin_non_numeric_search_finds_nothing_without_scanning(
    admin_client: Client, bot: int, model: type, term: str
) -> None:
    make_stack(bot, 111, ["MainMenu:menu"])
    FsmRecord.objects.create(bot_id=bot, chat_id=111, user_id=111, state="S:s")
    TelegramChat.objects.create(bot_id=bot, chat_id=111, user_id=111, username="alice")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(model), {"q": term})

    assert listed(response) == []
    assert not [q["sql"] for q in queries if " LIKE " in q["sql"].upper()]


def test_admin_filters_by_bot_and_state(admin_client: Client, bot: int) -> None:
    make_stack(bot, 1, ["MainMenu:menu"])
    make_stack(bot, 2, ["MainMenu:menu", "FoodOrder:cart"])
    make_stack(OTHER_BOT, 3, ["MainMenu:menu"])

    by_bot = admin_client.get(url(DialogStack), {"bot": str(bot)})
    by_state = admin_client.get(url(DialogStack), {"state": "FoodOrder:cart"})
    contexts = admin_client.get(url(DialogContext), {"bot": str(bot), "state": "MainMenu:menu"})

    assert chat_ids(by_bot) == {1, 2}
    assert chat_ids(by_state) == {2}
    assert chat_ids(contexts) == {1, 2}
    assert chat_ids(admin_client.get(url(DialogStack), {"bot": "nonsense"})) == set()


def test_admin_filter_choices_come_from_settings_and_bot_code(
    admin_client: Client, bot: int
) -> None:
    make_stack(OTHER_BOT, 3, ["Unknown:state"])

    page = admin_client.get(url(DialogStack)).content.decode()

    assert f"?bot={bot}" in page and ">default</a>" in page
    assert f"?bot={OTHER_BOT}" not in page  # not a DISTINCT over the table
    assert "?state=FoodOrder%3Ahungry" in page  # project.bot.states, not stored anywhere
    assert "?state=Unknown%3Astate" not in page


# -- repairs (the admin's actions are in test_admin_repair.py) --------------------------------
def test_close_top_dialog_in_the_database_pops_one(bot: int) -> None:
    """The fallback for stacks the bot's code cannot load: the rows alone are repaired."""
    stack = make_stack(bot, 1, ["MainMenu:menu", "FoodOrder:hungry", "FoodOrder:cart"])

    assert repair.close_top_dialog(stack.pk) is True

    stack.refresh_from_db()
    assert stack.intents == ["c1i0", "c1i1"]
    assert (stack.depth, stack.state) == (2, "FoodOrder:hungry")
    assert sorted(DialogContext.objects.values_list("intent_id", flat=True)) == ["c1i0", "c1i1"]


def test_close_top_dialog_in_the_database_refuses_an_empty_stack(bot: int) -> None:
    stack = make_stack(bot, 1, ["MainMenu:menu"])
    empty = make_stack(bot, 2, [])

    assert repair.close_top_dialog(stack.pk) is True
    assert repair.close_top_dialog(stack.pk) is False
    assert repair.close_top_dialog(empty.pk) is False
    stack.refresh_from_db()
    assert (stack.intents, stack.depth, stack.state) == ([], 0, "")
    assert not DialogContext.objects.exists()


# -- editing ---------------------------------------------------------------------------------
def context_form(context: DialogContext, dialog_data: str, **extra: Any) -> dict[str, Any]:
    return {"dialog_data": dialog_data, **extra}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{'cart': 1}", "Not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"cart": ', "Not valid JSON"),
        ("[1, 2]", "Enter a JSON object ({...}), not list"),
        ('"text"', "Enter a JSON object ({...}), not str"),
        ("null", "Enter a JSON object ({...}), not null"),
    ],
)
def test_admin_dialog_data_edit_rejects_what_is_not_a_json_object(
    admin_client: Client, bot: int, text: str, error: str
) -> None:
    stack = make_stack(bot, 1, ["FoodOrder:cart"], cart={"tea": 1})
    context = stack.contexts.get()

    response = admin_client.post(url(DialogContext, "change", context.pk), {"dialog_data": text})

    assert response.status_code == 200
    assert error in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    context.refresh_from_db()
    assert context.dialog_data == {"cart": {"tea": 1}}


def test_admin_dialog_data_edit_saves_a_json_object(admin_client: Client, bot: int) -> None:
    stack = make_stack(bot, 1, ["FoodOrder:cart"], cart={"tea": 1})
    context = stack.contexts.get()
    edit_page = admin_client.get(url(DialogContext, "change", context.pk)).content.decode()

    response = admin_client.post(
        url(DialogContext, "change", context.pk), {"dialog_data": '{"cart": {"pizza": 3}}'}
    )

    assert "{\n  &quot;cart&quot;: {\n    &quot;tea&quot;: 1" in edit_page  # indented textarea
    assert response.status_code == 302
    context.refresh_from_db()
    assert context.dialog_data == {"cart": {"pizza": 3}}


def test_admin_read_only_fields_cannot_be_changed_by_post(admin_client: Client, bot: int) -> None:
    stack = make_stack(bot, 1, ["MainMenu:menu", "FoodOrder:cart"])
    context = stack.contexts.get(intent_id="c1i1")
    chat = TelegramChat.objects.create(bot_id=bot, chat_id=1, user_id=1)
    forged = {
        "state": "Forged:state",
        "intent_id": "forged",
        "chat_id": "999",
        "user_id": "999",
        "bot_id": "999",
        "thread_id": "5",
        "stack": "",
        "aiogd_stack_id": "forged",
        "intents": json.dumps(["forged"]),
        "depth": "9",
    }
    inline = {"contexts-TOTAL_FORMS": "2", "contexts-INITIAL_FORMS": "2"}

    edited = admin_client.post(
        url(DialogContext, "change", context.pk), {**forged, "dialog_data": '{"ok": true}'}
    )
    stack_post = admin_client.post(url(DialogStack, "change", stack.pk), {**forged, **inline})
    chat_post = admin_client.post(
        url(TelegramChat, "change", chat.pk), {**forged, "is_blocked": "on"}
    )

    # The stack's page is read-only: a POST to it is refused.
    assert (edited.status_code, stack_post.status_code, chat_post.status_code) == (302, 403, 302)
    context.refresh_from_db()
    stack.refresh_from_db()
    chat.refresh_from_db()
    assert context.dialog_data == {"ok": True}
    assert (context.state, context.intent_id, context.stack_id) == (
        "FoodOrder:cart",
        "c1i1",
        stack.pk,
    )
    assert (context.chat_id, context.user_id, context.bot_id, context.thread_id) == (1, 1, bot, 0)
    assert (stack.intents, stack.depth, stack.state) == (["c1i0", "c1i1"], 2, "FoodOrder:cart")
    assert (stack.chat_id, stack.bot_id) == (1, bot)
    assert chat.is_blocked is True
    assert (chat.chat_id, chat.user_id, chat.bot_id) == (1, 1, bot)


def test_admin_cannot_add_rows_or_delete_contexts(admin_client: Client, bot: int) -> None:
    context = make_stack(bot, 1, ["MainMenu:menu"]).contexts.get()

    assert admin_client.get(url(DialogStack, "add")).status_code == 403
    assert admin_client.get(url(DialogContext, "delete", context.pk)).status_code == 403


# -- storage and scale -----------------------------------------------------------------------
@pytest.mark.parametrize("model", [DialogStack, DialogContext, FsmRecord, TelegramChat])
def test_admin_says_when_dialog_state_is_not_in_the_database(
    admin_client: Client, model: type
) -> None:
    memory = {"BACKEND": "aiogram.fsm.storage.memory.MemoryStorage", "CONFIG": {}}
    banner = "Dialog state is not in the database: BOTDIALOGS[&#x27;STORAGE&#x27;] is MemoryStorage"

    with override_settings(BOTDIALOGS={**settings.BOTDIALOGS, "STORAGE": memory}):
        in_memory = admin_client.get(url(model)).content.decode()
    in_database = admin_client.get(url(model)).content.decode()

    assert banner in in_memory
    assert "Dialog state is not in the database" not in in_database


def fill(model: type, bot: int, rows: range) -> None:
    for n in rows:
        if model is DialogStack or model is DialogContext:
            make_stack(bot, n, ["MainMenu:menu"])
        elif model is FsmRecord:
            FsmRecord.objects.create(bot_id=bot, chat_id=n, user_id=n, state="S:s")
        else:
            TelegramChat.objects.create(bot_id=bot, chat_id=n, user_id=n, username=f"u{n}")


@pytest.mark.parametrize("model", [DialogStack, DialogContext, FsmRecord, TelegramChat])
def test_admin_list_query_count_does_not_grow_with_rows(
    admin_client: Client, bot: int, model: type, django_assert_max_num_queries: Any
) -> None:
    fill(model, bot, range(3))
    with CaptureQueriesContext(connection) as few:
        assert len(listed(admin_client.get(url(model)))) == 3
    fill(model, bot, range(3, 60))

    with django_assert_max_num_queries(len(few)):
        assert len(listed(admin_client.get(url(model)))) == 60


def test_admin_list_count_stops_at_the_limit(
    admin_client: Client, bot: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_lists, "COUNT_LIMIT", 5)
    fill(DialogStack, bot, range(7))

    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(url(DialogStack)).content.decode()

    assert "The list has 5 rows or more; counting stops there." in page
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 5" in sql for sql in counts)


# -- chat lock -------------------------------------------------------------------------------
@pytest.fixture
def bot_holds_chat_lock(bot: int) -> Iterator[None]:
    """Hold chat 1's lock from another connection, as a running update does (PostgreSQL)."""
    if connection.vendor != "postgresql":
        pytest.skip("advisory chat locks are PostgreSQL's")
    import psycopg

    from botdialogs.storage.connections import connection_params

    key = repair.storage_key_of((bot, 1, 0, ""))
    with psycopg.connect(**connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (advisory_key(chat_lock_name(key)),))
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")


def test_admin_write_waits_for_the_bots_chat_lock(bot: int, bot_holds_chat_lock: None) -> None:
    stack = make_stack(bot, 1, ["MainMenu:menu", "FoodOrder:cart"])
    other_chat = make_stack(bot, 2, ["MainMenu:menu", "FoodOrder:cart"])

    with pytest.raises(OperationalError, match="lock timeout"):
        repair.close_top_dialog(stack.pk)

    assert repair.close_top_dialog(other_chat.pk) is True
    stack.refresh_from_db()
    assert stack.depth == 2


# -- hostile input ---------------------------------------------------------------------------
#: Odd values a query string can carry; PostgreSQL refuses NUL in any text parameter.
HOSTILE_VALUES = [
    "\x00",
    "Main\x00Menu:menu",
    "@\x00",
    "9" * 40,
    "-9223372036854775809",
    "1e3",
    "١٢٣",  # Arabic-Indic digits: int() accepts them
    "' OR 1=1 --",
    "%_\\",
    "\ufffd\U0001f4a5",
    "x" * 5000,
]


def botdialogs_admins() -> list[Any]:
    from django.contrib import admin

    return [
        ma for model, ma in admin.site._registry.items() if model._meta.app_label == "botdialogs"
    ]


def query_parameters(model_admin: Any, request: Any) -> list[str]:
    """Every list filter parameter of the admin's changelist, and ``q`` if it has a search box."""
    changelist = model_admin.get_changelist_instance(request)
    names = [name for spec in changelist.filter_specs for name in spec.expected_parameters()]
    return names + (["q"] if model_admin.get_search_fields(request) else [])


@pytest.mark.slow  # every admin list with generated hostile input
def test_every_admin_list_survives_hostile_filters_and_searches(
    admin_client: Client, rf: Any, admin_user: Any, bot: int
) -> None:
    make_stack(bot, 111, ["MainMenu:menu"])
    FsmRecord.objects.create(bot_id=bot, chat_id=111, user_id=111, state="S:s")
    TelegramChat.objects.create(bot_id=bot, chat_id=111, user_id=111, username="alice")
    request = rf.get("/")
    request.user = admin_user
    admin_client.raise_request_exception = False  # collect every 500, not only the first
    failures = []
    checked = 0
    for model_admin in botdialogs_admins():
        list_url = url(model_admin.model)
        for name in query_parameters(model_admin, request):
            for value in HOSTILE_VALUES:
                response = admin_client.get(list_url, {name: value})
                checked += 1
                # A clean page: the list, maybe empty, and a NUL finds nothing. Never a
                # server error, nor Django's "?e=1" redirect to its database error page.
                clean = response.status_code == 200 and "cl" in response.context
                if clean and "\x00" in value:
                    clean = listed(response) == []
                if not clean:
                    failures.append((model_admin.model.__name__, name, value[:9], response))
    assert checked > 100  # every admin and every filter was reached
    assert not failures, "\n".join(map(repr, failures))


def test_admin_nul_in_a_filter_lists_nothing_and_says_why(admin_client: Client, bot: int) -> None:
    make_stack(bot, 111, ["MainMenu:menu"])

    response = admin_client.get(url(DialogStack), {"state": "MainMenu:menu\x00"})

    assert listed(response) == []
    assert "NUL character" in response.content.decode()
    assert chat_ids(admin_client.get(url(DialogStack), {"state": "MainMenu:menu"})) == {111}


def test_admin_blocked_filter_ignores_values_it_does_not_know(
    admin_client: Client, bot: int
) -> None:
    TelegramChat.objects.create(bot_id=bot, chat_id=1, user_id=1, is_blocked=True)
    TelegramChat.objects.create(bot_id=bot, chat_id=2, user_id=2)

    assert chat_ids(admin_client.get(url(TelegramChat), {"blocked": "yes"})) == {1}
    assert chat_ids(admin_client.get(url(TelegramChat), {"blocked": "no"})) == {2}
    assert chat_ids(admin_client.get(url(TelegramChat), {"blocked": "maybe"})) == {1, 2}

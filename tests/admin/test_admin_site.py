"""The site's faces around the admin: the landing page, the admin's branding and links, and
the demo shop's orders list."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection
from django.http import HttpResponse
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse
from django.views.generic import TemplateView

from botdialogs.engine.bots import bot_id
from botdialogs.models import Broadcast, TelegramChat
from project.shop.models import DailySpecial, Order

pytestmark = pytest.mark.django_db


def stub(request: Any, **kwargs: Any) -> HttpResponse:
    return HttpResponse("stub")


# The demo's landing page and admin, with the pages other apps add (playground, monitor).
playground = ([path("", stub, name="playground")], "localtg")
monitor = ([path("", stub, name="monitor")], "botdialogs")
urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html")),
    path("admin/", admin.site.urls),
    path("play/", include(playground)),
    path("watch/", include(monitor)),
]


def test_landing_page_says_what_this_is_and_links_the_admin(client: Client) -> None:
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Talk to the demo bot" in html
    assert 'href="/admin/"' in html
    assert 'name="viewport"' in html and "/static/site/site.css" in html


@override_settings(ROOT_URLCONF=__name__)
def test_landing_page_links_the_playground_and_the_monitor_when_the_site_has_them(
    client: Client,
) -> None:
    html = client.get("/").content.decode()

    assert 'href="/play/">Open the chat playground</a>' in html
    assert 'href="/watch/">Live monitor</a>' in html


@override_settings(ROOT_URLCONF="tests.sites.admin_only_urls")
def test_admin_is_branded_and_survives_missing_pages(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert '<div id="site-name"><a href="/admin/">botdialogs demo</a></div>' in html
    assert "Live monitor" not in html  # no such page on this site: no link, no error
    assert "Chat playground" not in html


@override_settings(ROOT_URLCONF=__name__)
def test_admin_links_the_monitor_and_the_playground(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert '<a href="/watch/">Live monitor</a>' in html
    assert '<a href="/play/">Chat playground</a>' in html


def order_for(user_id: int, first_name: str, username: str, items: dict[str, int]) -> Order:
    TelegramChat.objects.create(
        bot_id=bot_id("default"),
        chat_id=user_id,
        user_id=user_id,
        first_name=first_name,
        username=username,
    )
    return Order.objects.create(telegram_user_id=user_id, telegram_chat_id=user_id, items=items)


def test_orders_list_shows_items_and_customer_and_searches_by_customer(
    admin_client: Client,
) -> None:
    ann = order_for(1001, "Ann", "ann_s", {"Pizza": 2, "Soup": 1})
    order_for(1002, "Bob", "bobby", {"Salad": 1})
    url = reverse("admin:shop_order_changelist")

    html = admin_client.get(url).content.decode()
    assert "2 x Pizza, 1 x Soup" in html and "1 x Salad" in html
    assert ">Ann</a> @ann_s" in html and ">Bob</a> @bobby" in html
    chat = TelegramChat.objects.get(user_id=1001)
    assert reverse("admin:botdialogs_telegramchat_change", args=[chat.pk]) in html

    for term in ("ann", "@ann_s", "1001"):
        found = admin_client.get(url, {"q": term}).context["cl"].result_list
        assert [order.pk for order in found] == [ann.pk], term


def test_orders_list_reads_customers_in_the_list_query(admin_client: Client) -> None:
    url = reverse("admin:shop_order_changelist")
    order_for(1, "A", "a", {"Pizza": 1})
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for user_id in range(2, 12):
        order_for(user_id, "B", f"b{user_id}", {"Soup": 1})
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)
    assert len(many) == len(few)


@pytest.mark.parametrize("term", ["\x00", "99999999999999999999999", "@", "ann\x00"])
def test_orders_search_survives_hostile_terms(admin_client: Client, term: str) -> None:
    order_for(1001, "Ann", "ann_s", {"Pizza": 1})

    response = admin_client.get(reverse("admin:shop_order_changelist"), {"q": term})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_daily_specials_are_listed_read_only_with_their_broadcast(admin_client: Client) -> None:
    broadcast = Broadcast.objects.create(bot_name="default", action={}, sent=3)
    special = DailySpecial.objects.create(
        day=datetime.date(2026, 11, 26), dish="Soup", broadcast=broadcast, runs=2
    )

    listing = admin_client.get(reverse("admin:shop_dailyspecial_changelist")).content.decode()
    page = admin_client.get(
        reverse("admin:shop_dailyspecial_change", args=[special.pk])
    ).content.decode()

    broadcast_page = reverse("admin:botdialogs_broadcast_change", args=[broadcast.pk])
    assert "Soup" in listing and f'href="{broadcast_page}"' in listing and "3 sent" in listing
    assert 'name="_save"' not in page and "Soup" in page
    assert admin_client.get(reverse("admin:shop_dailyspecial_add")).status_code == 403

"""The demo shop's orders, as the kitchen and support read them: what, for whom, where it is."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Case, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.fields import BigIntegerField
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from botdialogs.admin.big_tables import NulSafeAdminMixin, ReadOnlyPageMixin, as_bigint
from botdialogs.conf import get_settings
from botdialogs.engine.bots import bot_id
from botdialogs.models import TelegramChat
from project.shop.models import DailySpecial, Order

#: The customer's chat record columns an order row carries (one query for the whole page).
CUSTOMER = {
    "customer_chat_pk": "pk",
    "customer_first_name": "first_name",
    "customer_last_name": "last_name",
    "customer_username": "username",
}


def with_customers(orders: QuerySet[Order]) -> QuerySet[Order]:
    """Orders with their customer's names from the bot's chat record, as subqueries.

    An order names its bot by name and the chat record by the bot's Telegram id: the
    configured bots map one to the other inside the query.
    """
    telegram_bot_id = Case(
        *(When(bot_name=name, then=Value(bot_id(name))) for name in get_settings().bots),
        default=Value(0),
        output_field=BigIntegerField(),
    )
    chats = TelegramChat.objects.filter(
        bot_id=OuterRef("telegram_bot_id"),
        chat_id=OuterRef("telegram_chat_id"),
        user_id=OuterRef("telegram_user_id"),
    ).order_by()
    return orders.annotate(telegram_bot_id=telegram_bot_id).annotate(
        **{name: Subquery(chats.values(column)[:1]) for name, column in CUSTOMER.items()}
    )


@admin.register(Order)
class OrderAdmin(NulSafeAdminMixin, admin.ModelAdmin):
    """Orders with their items and customer; search by customer name, @username or id."""

    list_display = ["id", "items_summary", "customer", "status", "created_at"]
    list_filter = ["status"]
    list_editable = ["status"]
    search_fields = ["=telegram_user_id"]
    search_help_text = "Customer name, @username or Telegram user id."
    readonly_fields = ["customer", "items_summary", "created_at", "updated_at"]
    fields = ["customer", "items_summary", "status", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return with_customers(super().get_queryset(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        """Every word must match the customer's id, first or last name, or username."""
        for word in search_term.split():
            name = word.removeprefix("@")
            if not name:
                return queryset.none(), False  # a bare "@" names nobody
            where = (
                Q(customer_first_name__icontains=name)
                | Q(customer_last_name__icontains=name)
                | Q(customer_username__iexact=name)
            )
            number = as_bigint(word)
            if number is not None:
                where |= Q(telegram_user_id=number) | Q(pk=number)
            queryset = queryset.filter(where)
        return queryset, False

    @admin.display(description="items")
    def items_summary(self, order: Order) -> str:
        return order.summary()

    @admin.display(description="customer", ordering="customer_first_name")
    def customer(self, order: Any) -> str:
        name = (
            " ".join(part for part in (order.customer_first_name, order.customer_last_name) if part)
            or f"user {order.telegram_user_id}"
        )
        username = f" @{order.customer_username}" if order.customer_username else ""
        if order.customer_chat_pk is None:
            return f"{name}{username}"
        url = reverse("admin:botdialogs_telegramchat_change", args=[order.customer_chat_pk])
        return format_html('<a href="{}">{}</a>{}', url, name, username)


@admin.register(DailySpecial)
class DailySpecialAdmin(ReadOnlyPageMixin, admin.ModelAdmin):
    """Each day's "Today's special": its dish, how often the task ran, and its broadcast
    (progress and "Run again" are on the broadcast's own page)."""

    list_display = ["day", "dish", "runs", "broadcast_link", "created_at"]
    list_select_related = ["broadcast"]
    readonly_fields = ["day", "dish", "runs", "broadcast_link", "created_at"]
    fields = readonly_fields
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the daily task makes them

    @admin.display(description="broadcast")
    def broadcast_link(self, special: DailySpecial) -> str:
        broadcast = special.broadcast
        url = reverse("admin:botdialogs_broadcast_change", args=[broadcast.pk])
        return format_html(
            '<a href="{}">#{} {} ({} sent)</a>',
            url,
            broadcast.pk,
            broadcast.get_status_display(),
            broadcast.sent,
        )

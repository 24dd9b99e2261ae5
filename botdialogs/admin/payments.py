"""Stars payments: who paid what, and refunds that reach Telegram at most once per payment.

"Refund" asks first (the confirmation page lists the payments and their amounts); once
confirmed, each payment is turned "refund requested" and committed before Telegram is asked
(:mod:`botdialogs.payments.refunds`), so a second click, a stale page or a second admin
asks nothing. A payment left "refund requested" (the outcome was lost: network, a crash)
is resolved with "Ask Telegram again", which Telegram answers CHARGE_ALREADY_REFUNDED for a
refunded charge.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from botdialogs.admin.confirmation import PlannedChange, confirm_then_run
from botdialogs.admin.repair import RepairOutcome
from botdialogs.engine.bots import get_bot
from botdialogs.engine.sync import call_async
from botdialogs.models import StarPayment
from botdialogs.payments import RefundRefused, refund_star_payment

Status = StarPayment.Status


def _refund(payment: StarPayment, *, again: bool) -> RepairOutcome:
    async def run() -> StarPayment:
        return await refund_star_payment(get_bot(payment.bot_name), payment.pk, again=again)

    try:
        done = call_async(run)
    except RefundRefused as refused:
        return RepairOutcome(f"{payment}: not asked again ({refused})", messages.WARNING)
    level = messages.SUCCESS if done.status == Status.REFUNDED else messages.ERROR
    return RepairOutcome(
        f"{done.total_amount} {done.currency} to user {done.user_id}: "
        f"{done.get_status_display()} ({done.refund_answer})",
        level,
    )


@admin.register(StarPayment)
class StarPaymentAdmin(admin.ModelAdmin):
    """Payments in Stars, filtered by status, found by charge id; refunds that ask first."""

    list_display = (
        "paid_at",
        "total_amount",
        "currency",
        "user_id",
        "invoice_payload",
        "status",
        "bot_name",
    )
    list_filter = ("status", "bot_name")
    search_fields = ("=telegram_payment_charge_id", "=invoice_payload", "=user_id")
    date_hierarchy = "paid_at"
    readonly_fields = [field.name for field in StarPayment._meta.fields]
    actions = ("refund", "ask_again")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only Telegram's successful_payment makes one

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of money taken stays

    @admin.action(description="Refund… (asks first)", permissions=["change"])
    def refund(
        self, request: HttpRequest, queryset: QuerySet[StarPayment]
    ) -> TemplateResponse | None:
        def plan(payment: StarPayment) -> PlannedChange:
            refusable = payment.status not in (Status.PAID, Status.REFUND_FAILED)
            return PlannedChange(
                payment.pk,
                f"user {payment.user_id}",
                f"gives back {payment.total_amount} {payment.currency} for "
                f"{payment.invoice_payload!r}"
                + (f" (not: it is {payment.get_status_display()})" if refusable else ""),
                refused=refusable,
            )

        return confirm_then_run(
            self,
            request,
            queryset,
            action="refund",
            title="Refund these payments?",
            button="Yes, refund them",
            plan=plan,
            run=lambda payment, _seen: _refund(payment, again=False),
        )

    @admin.action(
        description="Ask Telegram again (a refund whose outcome is unknown)", permissions=["change"]
    )
    def ask_again(
        self, request: HttpRequest, queryset: QuerySet[StarPayment]
    ) -> TemplateResponse | None:
        def plan(payment: StarPayment) -> PlannedChange:
            return PlannedChange(
                payment.pk,
                f"user {payment.user_id}",
                f"asks Telegram to refund {payment.total_amount} {payment.currency} again "
                "(a refunded charge is only marked refunded)",
                refused=payment.status != Status.REFUND_REQUESTED,
            )

        return confirm_then_run(
            self,
            request,
            queryset,
            action="ask_again",
            title="Ask Telegram again?",
            button="Yes, ask again",
            plan=plan,
            run=lambda payment, _seen: _refund(payment, again=True),
        )

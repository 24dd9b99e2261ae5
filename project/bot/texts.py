"""The demo bot's words that are data: dish names and how many of a dish, in the user's language.

The shop stores dishes by their English names (``Order.items``); the bot shows them
translated. Each dish has its own plural, because languages decline the dish with the
number: "2 x Pizza" in English, "2 x Pizzen" in German, "5 x пицц" in Russian.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, ngettext_lazy

#: The shop's dish names -> their names on screen.
DISH_NAMES: dict[str, Promise] = {
    "Pizza": gettext_lazy("Pizza"),
    "Soup": gettext_lazy("Soup"),
    "Salad": gettext_lazy("Salad"),
    "Tea": gettext_lazy("Tea"),
    "Tea and cake": gettext_lazy("Tea and cake"),
}

#: How many of a dish ("count" in the data picks the plural form).
QUANTITIES: dict[str, Promise] = {
    "Pizza": ngettext_lazy("{count} x Pizza", "{count} x Pizza", "count"),
    "Soup": ngettext_lazy("{count} x Soup", "{count} x Soup", "count"),
    "Salad": ngettext_lazy("{count} x Salad", "{count} x Salad", "count"),
    "Tea": ngettext_lazy("{count} x Tea", "{count} x Tea", "count"),
}


def dish(name: str) -> str:
    """A dish's name in the active language (unknown names as they are)."""
    return str(DISH_NAMES.get(name, name))


def quantity(count: int, name: str) -> str:
    """``2 x Pizza`` in the active language, with the dish's plural form."""
    text = QUANTITIES.get(name)
    if text is None:
        return f"{count} x {dish(name)}"
    return str(text.format(count=count))  # type: ignore[attr-defined]


def order_summary(items: dict[str, int]) -> str:
    """An order's items as one line, by name (as ``Order.summary``), translated."""
    lines = [quantity(qty, name) for name, qty in sorted(items.items())]
    return ", ".join(lines) or gettext("nothing")

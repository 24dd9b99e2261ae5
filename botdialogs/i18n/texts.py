"""A text widget that translates at render time, in the update's language.

Write texts with Django's own functions, so ``manage.py makemessages`` finds them::

    from django.utils.translation import gettext_lazy as _, ngettext_lazy
    from botdialogs.i18n import Translated

    Translated(_("Hello, {name}!"))
    Translated(ngettext_lazy("{count} pizza", "{count} pizzas", "count"))
    Button(Translated(_("Order food")), id="order")

The text is formatted like aiogram_dialog's ``Format`` (``str.format`` with the window's
data); a plural picks its form from the data key named as ``ngettext_lazy``'s number.
"""

from __future__ import annotations

from typing import Any

from aiogram_dialog.api.protocols import DialogManager
from aiogram_dialog.widgets.common import WhenCondition
from aiogram_dialog.widgets.text import Text
from django.utils.functional import Promise
from django.utils.translation import gettext


class Translated(Text):
    """aiogram_dialog's ``Format`` over a ``gettext_lazy`` / ``ngettext_lazy`` string.

    A plain ``str`` is looked up with ``gettext`` at render time too (for messages marked
    elsewhere, e.g. with ``gettext_noop``). A missing catalog or translation renders the
    source text, as Django does.
    """

    def __init__(self, text: str | Promise, when: WhenCondition = None) -> None:
        super().__init__(when=when)
        self.text = text

    async def _render_text(self, data: dict[str, Any], manager: DialogManager) -> str:
        if isinstance(self.text, Promise):
            # Resolved now, in the active language; a lazy plural reads its count from data.
            return str(self.text.format(**data))  # type: ignore[attr-defined]
        return gettext(self.text).format_map(data)

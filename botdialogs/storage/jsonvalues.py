"""JSON that every supported database stores: checked where data enters, not at commit.

Python's ``json`` writes NaN and Infinity (not JSON), and PostgreSQL's jsonb refuses them, and
any text holding NUL (U+0000), when the transaction commits: long after the handler or site
code that produced them, and as a database error. :func:`json_copy` refuses them up front;
storage (``set_data``) and the background API wrap its :class:`NotJson` in their own errors.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.functional import Promise

NUL = "\x00"


class NotJson(ValueError):
    """Why a value cannot be stored as JSON (the message is the reason, for a user)."""


def _not_json(value: Any) -> Any:
    if isinstance(value, Promise):
        # Turned into text here it would be in the sender's language, not the user's.
        raise NotJson(
            "a lazy translation (gettext_lazy) is not JSON: send the data and write the words in "
            "the window (botdialogs.i18n.Translated), which speaks each user's language"
        )
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_copy(value: Any) -> Any:
    """A deep copy of ``value`` made of JSON types only; raises :class:`NotJson` otherwise."""
    try:
        text = json.dumps(value, allow_nan=False, default=_not_json)
    except RecursionError:
        raise NotJson("it is nested too deeply") from None
    except ValueError as error:
        if "Out of range float" in str(error):
            raise NotJson("NaN and Infinity are not JSON numbers") from None
        raise NotJson(str(error)) from error  # a circular reference
    except TypeError as error:
        raise NotJson(str(error)) from error
    copy = json.loads(text)
    # json escapes NUL as \u0000: only a text with that escape needs the walk.
    if "\\u0000" in text and _holds_nul(copy):
        raise NotJson("text holding a NUL character (U+0000) cannot be stored in PostgreSQL")
    return copy


def json_clone(value: Any) -> Any:
    """A deep copy of a value already made of JSON types (stored data, as read or checked).

    ``copy.deepcopy`` memoises and dispatches on every object: on an update's rows it was a
    seventh of the update's CPU. JSON needs new dicts and lists only.
    """
    if isinstance(value, dict):
        return {name: json_clone(item) for name, item in value.items()}
    if isinstance(value, list):
        return [json_clone(item) for item in value]
    return value


def _holds_nul(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False

"""A site that installed botdialogs without an extra learns which one at `manage.py check`.

The wheel's contents and a fresh site built from it are checked by docs/tutorial/check.py
(run by .ci/run); these are the fast parts that need no new virtualenv.
"""

from __future__ import annotations

import importlib
import sys

import pytest
from django.test import override_settings

import botdialogs
from botdialogs.checks import check_extras
from botdialogs.exceptions import MissingExtra

BOT = {"ROUTER": "botdialogs.testing.bots.counter_router"}


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look not installed: import fails and find_spec finds nothing."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def ids(messages: list) -> list[str]:
    return [message.id for message in messages]


@override_settings(BOTDIALOGS={"BOTS": {"default": BOT}, "BACKGROUND": "celery"})
def test_celery_background_without_celery_names_the_extra(monkeypatch):
    hide(monkeypatch, "celery")
    [error] = [m for m in check_extras() if m.id == "botdialogs.E017"]
    assert "BACKGROUND" in error.msg
    assert "botdialogs[celery]" in error.hint


@override_settings(BOTDIALOGS={"BOTS": {"default": {**BOT, "MODE": "queued"}}})
def test_queued_bot_without_celery_names_the_extra(monkeypatch):
    hide(monkeypatch, "celery")
    [error] = [m for m in check_extras() if m.id == "botdialogs.E017"]
    assert "['default']" in error.msg


@override_settings(BOTDIALOGS={"BOTS": {"default": BOT}, "BACKGROUND": "channels"})
def test_local_telegram_and_channels_background_without_channels(monkeypatch):
    hide(monkeypatch, "channels")
    [error] = check_extras()
    assert error.id == "botdialogs.E018"
    assert "botdialogs.localtg" in error.msg  # the demo site installs it
    assert "BACKGROUND" in error.msg
    assert "botdialogs[channels]" in error.hint


@override_settings(BOTDIALOGS={"BOTS": {"default": BOT}, "BACKGROUND": "celery"})
def test_installed_extras_pass():
    assert ids(check_extras()) == []


def test_importing_tasks_without_celery_names_the_extra(monkeypatch):
    hide(monkeypatch, "celery", "celery.signals")
    monkeypatch.delitem(sys.modules, "botdialogs.tasks")
    with pytest.raises(MissingExtra, match=r'pip install "botdialogs\[celery\]"') as raised:
        importlib.import_module("botdialogs.tasks")
    assert isinstance(raised.value, ImportError)
    assert raised.value.extra == "celery"


def test_version_is_a_string():
    assert isinstance(botdialogs.__version__, str)
    with pytest.raises(AttributeError):
        botdialogs.no_such_name  # noqa: B018

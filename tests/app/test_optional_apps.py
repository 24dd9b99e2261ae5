"""Local Telegram is an optional app: a site without it has none of its tables or routes,
and the core neither imports it nor needs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.processes  # runs a site in a Python subprocess

PROBE = """
import json, sys
import django
django.setup()
from django.db import connection
from django.urls import Resolver404, resolve
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("check")
tables = connection.introspection.table_names()
try:
    resolve("/localtg/botT/getMe")
    routed = True
except Resolver404:
    routed = False
from botdialogs.engine import bots
bots.get_dispatcher("default")  # the core builds its bot without the emulator
loaded = sorted(name for name in sys.modules if name.startswith("botdialogs.localtg"))
webhook = resolve("/bots/default/webhook/").url_name
print(json.dumps({"tables": tables, "routed": routed, "loaded": loaded, "webhook": webhook}))
"""


def run_site(settings_module: str, tmp_path: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
    }
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_site_without_local_telegram_has_none_of_it(tmp_path: Path) -> None:
    site = run_site("tests.sites.without_localtg", tmp_path)
    assert site["webhook"] == "webhook"
    assert not [table for table in site["tables"] if table.startswith("localtg_")]
    assert any(table.startswith("botdialogs_") for table in site["tables"])
    assert site["routed"] is False
    assert site["loaded"] == []  # not even imported


def test_the_demo_installs_it_and_routes_it(tmp_path: Path) -> None:
    site = run_site("project.settings", tmp_path)
    assert any(table.startswith("localtg_") for table in site["tables"])
    assert site["routed"] is True

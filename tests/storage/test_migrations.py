"""Migrations are complete and apply from nothing on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from botdialogs.testing.databases import scratch_database

ROOT = Path(__file__).resolve().parents[2]


def migrate(database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.processes  # migrates a database with manage.py
def test_migrations_apply_on_a_new_sqlite_file(tmp_path: Path) -> None:
    output = migrate(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert "Applying botdialogs.0001_initial... OK" in output


@pytest.mark.processes  # migrates a database with manage.py
def test_migrations_apply_on_a_new_postgresql_database() -> None:
    with scratch_database("migrations") as url:
        output = migrate(url)
        assert "Applying botdialogs.0001_initial... OK" in output
        assert "Applying shop.0001_initial... OK" in output

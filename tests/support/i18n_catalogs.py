"""The demo's compiled catalogs for the i18n tests: .mo files are built, not kept in git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]


def catalogs() -> list[Path]:
    """The demo's .po files."""
    return sorted(Path(settings.LOCALE_PATHS[0]).glob("*/LC_MESSAGES/django.po"))


def ensure_compiled() -> None:
    """Compile the demo's catalogs when a .mo is missing or older than its .po (needs msgfmt,
    Debian's gettext package), as bin/demo does at setup."""
    stale = [po for po in catalogs() if not _fresh(po)]
    if not stale:
        return
    # In a subprocess from project/: compilemessages walks its working directory for catalogs.
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "compilemessages", "--verbosity", "0"],
        cwd=ROOT / "project",
        check=True,
    )
    # This process may have cached a language without its catalog: Django forgets its
    # catalogs when LOCALE_PATHS changes (its own test signal), so "change" it.
    with override_settings(LOCALE_PATHS=list(settings.LOCALE_PATHS)):
        pass


def _fresh(po: Path) -> bool:
    mo = po.with_suffix(".mo")
    return mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime


@pytest.fixture(scope="session")
def compiled_catalogs() -> None:
    """The demo's catalogs, compiled (use before anything renders a translated text)."""
    ensure_compiled()

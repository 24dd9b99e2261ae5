"""Sphinx configuration of the botdialogs docs (built by .ci/run with ``sphinx-build -W``).

Why Sphinx: the docstrings are written in its roles (``:func:``, ``:class:``), so autodoc
turns them into the API reference with no second copy; MyST lets the pages stay Markdown,
as the README was, with Sphinx's cross-references and ``literalinclude`` (the tutorial
shows the files docs/tutorial/check.py runs, so the two cannot drift).
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # botdialogs from this checkout
sys.path.insert(0, str(DOCS))  # docs_settings
sys.path.insert(0, str(DOCS / "_ext"))  # botdialogs_docs: the reference stays complete
os.environ["DJANGO_SETTINGS_MODULE"] = "docs_settings"
django.setup()  # autodoc imports models and admin modules

project = "botdialogs"
author = "the botdialogs developers"
copyright = "2026, the botdialogs developers"
# One version, pyproject.toml's (the checkout need not be installed).
release = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())["project"]["version"]

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode", "botdialogs_docs"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "tutorial/site", "README.md"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The packages re-export their modules' public names: document them under the package.
autodoc_inherit_docstrings = True

html_theme = "alabaster"
html_title = "botdialogs"
html_theme_options = {"description": "Telegram bot dialogs inside a Django site"}

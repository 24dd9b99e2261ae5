"""Sphinx helpers that keep the reference complete: a page that misses a check id, a setting
or a management command fails the build (``-W`` turns these warnings into errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management import get_commands, load_command_class
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[2] / "botdialogs"


def botdialogs_commands() -> dict[str, str]:
    """Management command name -> its app, for the commands botdialogs ships."""
    return {
        name: app
        for name, app in sorted(get_commands().items())
        if isinstance(app, str) and app.startswith("botdialogs")
    }


def check_ids() -> set[str]:
    """Every system check id the package's source names."""
    found: set[str] = set()
    for source in PACKAGE.rglob("*.py"):
        found.update(re.findall(r"botdialogs\.[EW]\d{3}", source.read_text()))
    return found


def setting_keys() -> set[str]:
    from botdialogs import conf

    return set(conf.DEFAULTS) | set(conf.BOT_DEFAULTS) | set(conf.REQUIRED_BOT_KEYS)


#: docname -> (what it must name, the ways a name may be written there)
REQUIRED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "reference/checks": (check_ids, ("`{}`",)),
    "reference/settings": (setting_keys, ("`{}`", '["{}"]')),
}


def require_everything(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname not in REQUIRED:
        return
    names, forms = REQUIRED[docname]
    missing = sorted(
        name for name in names() if not any(form.format(name) in source[0] for form in forms)
    )
    for name in missing:
        logger.warning("%s does not document %s", docname, name, location=docname)


class CommandsDirective(SphinxDirective):
    """Every management command of botdialogs with its ``--help``, as argparse prints it."""

    def run(self) -> list[nodes.Node]:
        result: list[nodes.Node] = []
        for name, app in botdialogs_commands().items():
            command = load_command_class(app, name)
            parser = command.create_parser("manage.py", name)
            section = nodes.section(ids=[f"command-{name}"])
            section += nodes.title(text=name)
            section += nodes.paragraph(text=command.help)
            section += nodes.literal_block(text=parser.format_help().strip())
            result.append(section)
        return result


class UpdateTypesDirective(SphinxDirective):
    """The table of :data:`botdialogs.http.update_types.UPDATE_TYPES`: the data a test
    delivers through the real webhook, row by row."""

    HEADERS = ("Update type", "Outcome", "Unit of work", "Effect")

    def run(self) -> list[nodes.Node]:
        from botdialogs.http.update_types import UPDATE_TYPES

        rows = [
            (f"``{row.kind}``" if row.kind.isidentifier() else row.kind) for row in UPDATE_TYPES
        ]
        table = nodes.table()
        group = nodes.tgroup(cols=len(self.HEADERS))
        table += group
        for width in (24, 22, 10, 44):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += self._row(self.HEADERS)
        group += head
        body = nodes.tbody()
        for kind, row in zip(rows, UPDATE_TYPES, strict=True):
            body += self._row((kind, row.outcome.value, row.scope.value, row.effect))
        group += body
        return [table]

    @staticmethod
    def _row(cells: tuple[str, ...]) -> nodes.row:
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            paragraph = nodes.paragraph()
            if text.startswith("``"):
                paragraph += nodes.literal(text=text.strip("`"))
            else:
                paragraph += nodes.Text(text)
            entry += paragraph
            row += entry
        return row


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", require_everything)
    app.add_directive("botdialogs-commands", CommandsDirective)
    app.add_directive("botdialogs-update-types", UpdateTypesDirective)
    return {"parallel_read_safe": True}

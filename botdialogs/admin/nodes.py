"""Admin pages for node state (:mod:`botdialogs.nodes`): who is at which node, with what data.

Data is shown indented and edited as JSON, validated against the node's pydantic model
before it is saved (a typo never reaches the bot). Writes take the chat lock
(:func:`botdialogs.admin.repair.chat_write`), like the bot's own steps. The actions move users
to another node or back to the start node; the node's ``on_enter`` runs at their next event
(the admin sends no message).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from pydantic import ValidationError

from botdialogs.admin.big_tables import (
    BotListFilter,
    JSONObjectField,
    NulSafeAdminMixin,
    pretty_json,
)
from botdialogs.admin.people import person_html, with_people
from botdialogs.admin.repair import chat_scope_of, chat_scopes_of, chat_write
from botdialogs.conf import get_settings
from botdialogs.engine.bots import load_router
from botdialogs.models import NodeState
from botdialogs.nodes import NodeRouter, UnknownNode
from botdialogs.nodes import routers as created_routers

_loaded: set[str] = set()


def routers() -> dict[str, NodeRouter[Any, Any, Any]]:
    """The NodeRouters of the site's bots, by name.

    A web process may not have handled an update yet: building each bot's router once makes
    its NodeRouters known here (the Router built is not attached to anything).
    """
    for name in get_settings().bots:
        if name not in _loaded:
            load_router(name)
            _loaded.add(name)
    return created_routers()


def node_choices() -> list[tuple[str, str]]:
    """Every (router, node key) pair of this process's NodeRouters."""
    return [
        (f"{name}:{key}", f"{name}: {key}")
        for name, router in sorted(routers().items())
        for key in router.registry.node_keys()
    ]


class NodeStateForm(forms.ModelForm):
    """The node key and data, validated against the node's model."""

    class Meta:
        model = NodeState
        fields = ("node_key", "data")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["data"] = JSONObjectField(
            required=False, help_text="The node's data as JSON; checked against its model."
        )

    def clean(self) -> dict[str, Any]:
        """The data must validate against the model of the node it is saved with."""
        cleaned = super().clean() or {}
        router = routers().get(self.instance.router)
        if router is None:
            raise forms.ValidationError(
                f"No NodeRouter named {self.instance.router!r} is loaded in this process"
            )
        try:
            node_class = router.registry.get(cleaned.get("node_key", ""))
            node = node_class.restore(cleaned.get("data") or {})
        except UnknownNode as error:
            self.add_error("node_key", str(error))
            return cleaned
        except ValidationError as error:
            self.add_error("data", f"Not valid for {node_class.__qualname__}: {error}")
            return cleaned
        cleaned["data"] = node.dump()
        self.instance.schema_version = node_class.schema_version
        return cleaned


class MoveForm(ActionForm):
    """The node the "move to node" action moves users to."""

    node = forms.ChoiceField(required=False, choices=node_choices)


class NodeListFilter(admin.SimpleListFilter):
    """Filter by node key (keys of the registered routers)."""

    title = "node"
    parameter_name = "node"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The registered node keys."""
        return sorted(
            {(key, key) for router in routers().values() for key in router.registry.node_keys()}
        )

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Rows at the chosen node."""
        return queryset.filter(node_key=self.value()) if self.value() else queryset


@admin.register(NodeState)
class NodeStateAdmin(NulSafeAdminMixin, admin.ModelAdmin):
    """Node state: search by user, filter by bot and node, edit data with validation."""

    form = NodeStateForm
    action_form = MoveForm
    list_display = ("who", "chat_id", "router", "node_key", "schema_version", "updated_at")
    list_display_links = ("node_key",)
    list_filter = (BotListFilter, NodeListFilter, "router")
    search_fields = ("=user_id", "=chat_id")
    search_help_text = "Exact user id or chat id."
    ordering = ("-updated_at",)
    readonly_fields = (
        "who",
        "bot_id",
        "chat_id",
        "user_id",
        "router",
        "schema_version",
        "data_pretty",
    )
    actions = ("move_to_node", "move_to_start")

    def get_queryset(self, request: HttpRequest) -> QuerySet[NodeState]:
        """Rows with their user's names (one query for the page)."""
        return with_people(super().get_queryset(request))

    @admin.display(description="user")
    def who(self, obj: NodeState) -> str:
        """Name and @username, linked to their chat record and playground conversation."""
        return person_html(obj)

    @admin.display(description="data (as stored)")
    def data_pretty(self, obj: NodeState) -> str:
        """The stored data, indented."""
        return pretty_json(obj.data)

    def save_model(self, request: HttpRequest, obj: NodeState, form: Any, change: bool) -> None:
        """Save under the chat lock, like a bot step."""
        with chat_write(NodeState, {chat_scope_of(obj)}):
            super().save_model(request, obj, form, change)

    @admin.action(
        description="Move to the node chosen below (its on_enter runs at their next event)"
    )
    def move_to_node(self, request: HttpRequest, queryset: QuerySet[NodeState]) -> None:
        """Put the selected users on one node with its default data."""
        router_name, _, key = (request.POST.get("node") or "").partition(":")
        router = routers().get(router_name)
        if router is None or not key:
            self.message_user(request, "Choose a node first.", messages.ERROR)
            return
        node = router.registry.get(key)()
        self._move(
            request,
            queryset.filter(router=router_name),
            key,
            node.dump(),
            type(node).schema_version,
        )

    @admin.action(description="Move back to the start node")
    def move_to_start(self, request: HttpRequest, queryset: QuerySet[NodeState]) -> None:
        """Put each selected user on their router's start node."""
        moved = 0
        for row in queryset:
            router = routers().get(row.router)
            if router is None:
                continue
            node = router.start_node(row.user_id)
            with chat_write(NodeState, {chat_scope_of(row)}):
                NodeState.objects.filter(pk=row.pk).update(
                    node_key=router.registry.key_of(node),
                    data=node.dump(),
                    schema_version=type(node).schema_version,
                )
            moved += 1
        self.message_user(request, f"Moved {moved} user(s) to the start node.")

    def _move(
        self,
        request: HttpRequest,
        queryset: QuerySet[NodeState],
        key: str,
        data: dict,
        version: int,
    ) -> None:
        with chat_write(NodeState, chat_scopes_of(queryset)):
            moved = queryset.update(node_key=key, data=data, schema_version=version)
        self.message_user(request, f"Moved {moved} user(s) to {key}.")

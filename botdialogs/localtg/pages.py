"""The chat playground: pages to chat with local bots as a simulated Telegram user.

``/localtg/`` picks a bot and a user; ``/localtg/<bot>/<chat_id>/`` is the chat, a page that
reads and writes through the user API (:mod:`.views`) and hears changes over its websocket
(:mod:`.consumers`). Files the bots uploaded are served from ``/localtg/api/files/<id>/``.
"""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from botdialogs.conf import get_settings
from botdialogs.exceptions import UnknownBot
from botdialogs.localtg import chats
from botdialogs.localtg.limits import MAX_TEXT_LENGTH
from botdialogs.localtg.models import LocalChat, LocalFile

#: Simulated users get ids in this range unless the form names one (real users' ids are
#: positive and below 2**52; any of them is fine for local Telegram).
NEW_USER_IDS = (1_000_000, 999_999_999)
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("es", "Español")]
LANGUAGES += [("it", "Italiano"), ("ru", "Русский"), ("uk", "Українська")]
#: Image types a browser may show in place; anything else is a download.
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def local_bot_names() -> list[str]:
    """Every configured bot without a token: the bots local Telegram serves."""
    return [name for name, bot in get_settings().bots.items() if bot.is_local]


class NewUserForm(forms.Form):
    """A simulated user to chat with a local bot as."""

    bot = forms.ChoiceField(label="Bot")
    first_name = forms.CharField(label="First name", max_length=255, initial="Ann")
    last_name = forms.CharField(label="Last name", max_length=255, required=False)
    username = forms.RegexField(
        label="Username",
        regex=r"^[A-Za-z0-9_]{0,32}$",
        required=False,
        error_messages={"invalid": "Letters, digits and _ only, at most 32."},
    )
    language_code = forms.ChoiceField(label="Language", choices=LANGUAGES, initial="en")
    user_id = forms.IntegerField(
        label="User id",
        required=False,
        min_value=1,
        max_value=2**52 - 1,
        help_text="Empty: a new id. An existing id opens that user's chat.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bot = self.fields["bot"]
        assert isinstance(bot, forms.ChoiceField)
        bot.choices = [(name, name) for name in local_bot_names()]

    def clean_first_name(self) -> str:
        """A name Telegram would show: not only spaces."""
        name: str = self.cleaned_data["first_name"].strip()
        if not name:
            raise forms.ValidationError("The first name is empty.")
        return name


def _new_user_id(bot_name: str) -> int:
    taken = set(LocalChat.objects.filter(bot__name=bot_name).values_list("chat_id", flat=True))
    while True:
        user_id = secrets.choice(range(*NEW_USER_IDS))
        if user_id not in taken:
            return user_id


@require_http_methods(["GET", "POST"])
def playground(request: HttpRequest) -> HttpResponse:
    """``/localtg/``: pick a local bot and a simulated user, or reopen an earlier chat."""
    names = local_bot_names()
    form = NewUserForm(request.POST or None, initial={"bot": names[0] if names else ""})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user_id = data["user_id"] or _new_user_id(data["bot"])
        profile = {key: data[key] for key in chats.PROFILE_FIELDS}
        chats.open_chat(data["bot"], user_id, profile)
        return redirect("localtg:chat", name=data["bot"], chat_id=user_id)
    recent = LocalChat.objects.filter(bot__name__in=names).select_related("bot").order_by("-pk")
    return render(
        request,
        "localtg/playground.html",
        {"form": form, "bots": names, "chats": recent[:30]},
        status=400 if form.is_bound else 200,
    )


@require_GET
def chat(request: HttpRequest, name: str, chat_id: int) -> HttpResponse:
    """``/localtg/<bot>/<chat_id>/``: the chat page of one simulated user."""
    try:
        local_chat = chats.find_chat(name, chat_id)
    except (UnknownBot, chats.ChatError):
        raise Http404(f"No chat {chat_id} with a local bot {name!r}") from None
    api = {"name": name, "chat_id": chat_id}
    config = {
        "bot": name,
        "chatId": chat_id,
        "maxLength": MAX_TEXT_LENGTH,
        "messagesUrl": reverse("localtg:messages", kwargs=api),
        "pressUrl": reverse("localtg:press", kwargs=api),
        "payUrl": reverse("localtg:pay", kwargs=api),
        "blockUrl": reverse("localtg:block", kwargs=api),
        "faultsUrl": reverse("localtg:faults", kwargs={"name": name}),
        "webAppUrl": reverse("localtg:webapp", kwargs=api),
        "fileUrl": reverse("localtg:file", kwargs={"file_id": "FILE_ID"}),
        "socketPath": f"/ws/localtg/{name}/{chat_id}/",
    }
    context = {"chat": local_chat, "bot_name": name, "config": config}
    return render(request, "localtg/chat.html", context)


def _image_type(content: bytes) -> str | None:
    for signature, mime_type in IMAGE_SIGNATURES.items():
        if content.startswith(signature):
            return mime_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


@require_GET
def file(request: HttpRequest, file_id: str) -> HttpResponse:
    """A file a bot uploaded: photos in place when they are images, all else a download.

    The type of a photo comes from its bytes, never from what the uploader claimed; no file
    is served as HTML or script, and every answer is sandboxed.
    """
    stored = LocalFile.objects.filter(file_id=file_id, content__isnull=False).first()
    if stored is None or stored.content is None:
        raise Http404("No such file, or its bytes were too large to keep")
    content = bytes(stored.content)
    image_type = _image_type(content) if stored.kind == "photo" else None
    response = HttpResponse(content, content_type=image_type or "application/octet-stream")
    if image_type is None:
        name = stored.file_name or f"{stored.kind}.bin"
        response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=86400"
    return response

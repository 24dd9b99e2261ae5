"""The webhook view (filled in by part 3)."""

from django.http import HttpRequest, HttpResponse


async def webhook(request: HttpRequest, name: str) -> HttpResponse:
    """Placeholder until the webhook lands."""
    return HttpResponse(status=501)

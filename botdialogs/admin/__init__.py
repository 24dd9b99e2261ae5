"""botdialogs admin: inspection and repair of stored dialogs, and background work."""

from botdialogs.admin import background, storage

__all__ = ["background", "storage"]

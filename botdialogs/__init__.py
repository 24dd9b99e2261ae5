"""botdialogs: Telegram bot dialogs (aiogram + aiogram_dialog) inside a Django site.

Nothing heavy is imported here; the public API is in the modules (README, "Reference"):
``botdialogs.storage`` (DjangoStorage), ``botdialogs.background`` (start, update, ...),
``botdialogs.engine`` (the bots and Dispatchers), ``botdialogs.http`` (the webhook),
``botdialogs.testing`` (a test kit for sites).
"""

from botdialogs import moved

moved.install()  # old import paths keep working, with a DeprecationWarning

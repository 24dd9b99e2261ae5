"""botdialogs: Telegram bot dialogs (aiogram + aiogram_dialog) inside a Django site.

Importing the package does nothing. The public API lives in its packages:
``botdialogs.storage`` (DjangoStorage), ``botdialogs.background`` (start, update, ...),
``botdialogs.timers``, ``botdialogs.nodes``, ``botdialogs.engine`` (the bots and
Dispatchers), ``botdialogs.http`` (the webhook) and ``botdialogs.testing`` (a test kit).
"""

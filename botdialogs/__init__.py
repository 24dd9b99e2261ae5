"""botdialogs: Telegram bot dialogs (aiogram + aiogram_dialog) inside a Django site.

Nothing heavy is imported here; import what you need from its module:
``botdialogs.bots`` (get_bot, get_dispatcher), ``botdialogs.background`` (start, update, ...),
``botdialogs.storage`` (DjangoStorage), ``botdialogs.testing`` (a test client for sites).
"""

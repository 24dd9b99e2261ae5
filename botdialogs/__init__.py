"""botdialogs: Telegram bot dialogs (aiogram + aiogram_dialog) inside a Django site.

Importing the package does nothing. The public API lives in its packages:
``botdialogs.storage`` (DjangoStorage), ``botdialogs.background`` (start, update, ...),
``botdialogs.timers``, ``botdialogs.nodes``, ``botdialogs.engine`` (the bots and
Dispatchers), ``botdialogs.http`` (the webhook) and ``botdialogs.testing`` (a test kit).
"""


def __getattr__(name: str) -> str:
    """``botdialogs.__version__``, read from the installed package's metadata on first use.

    Lazy: reading the metadata scans sys.path, which a plain ``import botdialogs`` should not.
    """
    if name != "__version__":
        raise AttributeError(f"module 'botdialogs' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("botdialogs")
    except PackageNotFoundError:  # a checkout that was never installed (pip install -e .)
        return "0+unknown"

"""botdialogs: Telegram bot dialogs (aiogram + aiogram_dialog) inside a Django site.

Nothing heavy is imported here; the public API is in the modules (README, "Reference"):
``botdialogs.storage`` (DjangoStorage), ``botdialogs.background`` (start, update, ...),
``botdialogs.engine`` (the bots and Dispatchers), ``botdialogs.http`` (the webhook),
``botdialogs.testing`` (a test kit for sites).
"""

from botdialogs import moved

moved.install()  # old import paths keep working, with a DeprecationWarning


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

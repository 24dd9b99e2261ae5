"""Local Telegram: a Bot API emulator served by the same Django server (used with no token)."""

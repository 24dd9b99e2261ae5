"""Tables of the local Telegram emulator (chats, messages, webhooks)."""

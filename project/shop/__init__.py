"""The demo site's shop: orders placed through the bot."""

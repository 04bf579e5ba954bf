"""Event handlers, one behaviour per module; `bot.dispatch` routes events to them."""

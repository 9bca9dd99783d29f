"""handoff: an AI assistant in front of customers on every channel, with human takeover."""

__version__ = "0.1.0"

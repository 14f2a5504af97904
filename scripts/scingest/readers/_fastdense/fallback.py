"""The one way the fast path says no."""


class Fallback(Exception):
    """The fast path met something it leaves to the simple path (the message says what)."""

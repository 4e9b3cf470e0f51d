"""The one exception type users see: the CLI prints its message as a single line, no traceback."""


class TransplantError(Exception):
    """Bad input or an impossible request, with a message that says what to do about it."""

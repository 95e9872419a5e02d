"""The one exception type users see: a message that says what was wrong and what to do."""


class AnimLongError(ValueError):
    """A problem the user can fix. The message is shown as is in the UI, the API and the CLI."""

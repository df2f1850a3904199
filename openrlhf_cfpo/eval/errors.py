"""The one exception type the eval CLI turns into a single clear error line."""


class EvalError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""

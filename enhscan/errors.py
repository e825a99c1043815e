"""The exception enhscan raises for problems a user can fix."""


class EnhscanError(Exception):
    """Bad input or a broken environment, with a one-line message that says what to do.

    The CLI prints the message (without a traceback) and exits with status 1 or 2; library
    callers can catch it like any other exception.
    """

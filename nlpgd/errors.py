"""User-facing errors: one sentence naming the file, column, label or key.

Library code raises :class:`NlpgdError` for anything a user can fix (bad input, a missing
file, an unknown key). The CLI prints its message on one line and exits non-zero; it never
shows a traceback for these.
"""


class NlpgdError(Exception):
    """An error caused by the user's input, with a message meant to be read as-is."""

    exit_code = 2
    prefix = "error: "  # how the CLI introduces the message


class Interrupted(NlpgdError):
    """Ctrl-C during long work: the message says what was kept and how to continue."""

    exit_code = 130
    prefix = ""  # the message starts with "interrupted:"; Ctrl-C is not an error


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__

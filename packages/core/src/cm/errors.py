"""Errors a user can act on: the CLI prints their message (no traceback) and exits 2."""

import difflib


class UserError(Exception):
    """Bad input from the user: a file, key, row or option, with the fix in the message."""

    exit_code = 2


class PluginError(UserError):
    """A plugin could not be used (duplicate name, unknown component, broken hook)."""


def suggest(name, known):
    """A ``; did you mean 'x'?`` hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""

"""Errors a user can act on: the CLI prints their message (no traceback) and exits 2."""


class UserError(Exception):
    """Bad input from the user: a file, key, row or option, with the fix in the message."""

    exit_code = 2


class PluginError(UserError):
    """A plugin could not be used (duplicate name, unknown component, broken hook)."""

"""Passwords in URIs (``postgresql+psycopg://cm:secret@db/cm``, ``http://u:p@host``) are
shown as ``***`` wherever cm writes or prints one: messages, MLflow params and tags, and the
``config.toml`` copies of an experiment. The real value stays in memory, where the store is
opened."""

import re

# scheme://user:password@ -> the password is everything between the user's colon and the
# last @ before the host (a password may itself hold @ or :)
USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^/\s]*)@")


def hide_passwords(text: str) -> str:
    """``text`` with the password of every URI in it replaced by ``***``."""
    return USERINFO.sub(lambda m: f"{m['head']}***@", text)


def hidden(value):
    """``value`` (a config tree: dicts, lists, strings, numbers) with every password in a
    string hidden."""
    if isinstance(value, str):
        return hide_passwords(value)
    if isinstance(value, dict):
        return {key: hidden(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [hidden(item) for item in value]
    return value

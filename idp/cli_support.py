"""Small helpers shared by the `flask` command groups."""

from __future__ import annotations

import functools

from flask import current_app
from flask_babel import force_locale


def in_default_locale(command):
    """Run a command in the default locale: its lazy messages have no request to pick one."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
            return command(*args, **kwargs)

    return wrapper

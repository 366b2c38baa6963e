"""The navigator's settings with no token: ``manage.py check`` reports E012."""

from __future__ import annotations

from tests.navigator.settings import *  # noqa: F403

del GITHUB_TOKEN  # noqa: F821

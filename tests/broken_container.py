"""A container module that fails as it is imported, with something other than ImportError."""

from __future__ import annotations

msg = "the configuration service did not answer"
raise RuntimeError(msg)

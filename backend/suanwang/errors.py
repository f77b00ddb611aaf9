"""One exception hierarchy for the whole package.

Messages say what was wrong and what to do; ``field`` names the input that was wrong
so the API and the CLI can point at it.
"""

from __future__ import annotations

import re


class SuanwangError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def code(self) -> str:
        """The error's kind as the API names it, in the same snake case as its other codes:
        InputError -> "invalid_input", NotFoundError -> "not_found", ContentTooLargeError -> "content_too_large"."""
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__.removesuffix("Error")).lower()
        return "invalid_input" if name == "input" else name


class InputError(SuanwangError):
    """Input (a file, a row, a request) is malformed or out of range."""


class NotFoundError(SuanwangError):
    """A named thing (router, node, order, GPU model) does not exist."""


class ConflictError(SuanwangError):
    """The request clashes with what is already recorded (the same signed order placed differently)."""


class InfeasibleError(SuanwangError):
    """The request is well formed but cannot be satisfied (no path, no node)."""


class UnauthenticatedError(SuanwangError):
    """A request that must be signed is not, or its signature is not the account it names (HTTP 401)."""


class ForbiddenError(SuanwangError):
    """A signed request from an account that may not have what it asks for (HTTP 403)."""


class ConfigurationError(SuanwangError):
    """A file the service itself was started with (not a client's input) is wrong: the API answers 503,
    naming the file, rather than blaming the request."""

"""The errors of sealed content, all InputErrors (the API answers 400): each says what is wrong with it."""

from __future__ import annotations

from suanwang.errors import InputError


class EnvelopeError(InputError):
    """Base of the errors of sealed content."""


class NotEnvelopeError(EnvelopeError):
    """The bytes are not a Suanwang envelope (not its JSON, another version or suite, a field missing)."""


class NotRecipientError(EnvelopeError):
    """The envelope is sealed to other keys than the one offered to open it."""


class DamagedEnvelopeError(EnvelopeError):
    """The envelope names this recipient but does not open: its bytes were changed (or the key is wrong)."""


class NotSpecificationError(EnvelopeError):
    """The envelope opens, but what the buyer sealed is not a job specification: the buyer's mistake, not
    the provider's (lifecycle/jobs.py runs a job that reports it, so the deal is delivered, not declined)."""

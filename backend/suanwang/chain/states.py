"""Moved to `suanwang.states` (the vocabulary is shared by chain/, storage/ and the API); kept importable
here until every caller imports it from there."""

from suanwang.states import *  # noqa: F403
from suanwang.states import __all__  # noqa: F401

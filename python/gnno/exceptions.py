"""The exceptions gnno raises. All are ``ValueError`` subclasses.

They are defined in the compiled core (so Rust errors map to them directly)
and re-exported here; ``NotInShardError`` is raised from Python only.
"""

from gnno._gnno import (
    DataFormatError,
    EmptyInputError,
    GnnoError,
    IdOutOfRangeError,
    NonFiniteError,
    SaturatedUserError,
    ShapeError,
)


class NotInShardError(IdOutOfRangeError):
    """A user id that another rank's ``ShardedSampler`` holds."""


__all__ = [
    "GnnoError",
    "IdOutOfRangeError",
    "NotInShardError",
    "ShapeError",
    "NonFiniteError",
    "EmptyInputError",
    "SaturatedUserError",
    "DataFormatError",
]

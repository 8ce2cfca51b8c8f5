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


# The compiled classes name a module (``gnno``) that does not hold them;
# pickling finds a class by ``__module__`` and name, so point it here (a
# ``DataLoader`` worker started with ``spawn`` pickles the errors it raises).
for _cls in (
    GnnoError,
    IdOutOfRangeError,
    ShapeError,
    NonFiniteError,
    EmptyInputError,
    SaturatedUserError,
    DataFormatError,
):
    _cls.__module__ = __name__
del _cls


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

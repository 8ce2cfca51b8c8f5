"""The exceptions gnno raises. All are ``ValueError`` subclasses.

They are defined in the compiled core (so Rust errors map to them directly)
and re-exported here.
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

__all__ = [
    "GnnoError",
    "IdOutOfRangeError",
    "ShapeError",
    "NonFiniteError",
    "EmptyInputError",
    "SaturatedUserError",
    "DataFormatError",
]

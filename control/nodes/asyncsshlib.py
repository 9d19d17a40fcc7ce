"""asyncssh, imported without the warnings its import raises: it still names
DSA keys, which the current cryptography deprecates, and each such name is a
CryptographyDeprecationWarning on a user's terminal. Import asyncssh from here."""

from __future__ import annotations

import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        message="DSA is deprecated",
        category=CryptographyDeprecationWarning,
        module=r"asyncssh(\.|$)",
    )
    import asyncssh

__all__ = ["asyncssh"]

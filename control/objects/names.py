"""Names the API server and controllers make up, in Kubernetes' alphabet.

Kubernetes spells random name suffixes (`metadata.generateName`) and the
`pod-template-hash` in an alphabet without vowels and without the digits
and letters that look alike, so a made-up name never spells a word.
"""

from __future__ import annotations

import secrets

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5
# A generateName is cut so that the name stays within 63 characters.
MAX_GENERATED_BASE = 63 - SUFFIX_LENGTH


def random_suffix(length: int = SUFFIX_LENGTH) -> str:
    """`length` random characters of the alphabet (Kubernetes' rand.String)."""
    return "".join(secrets.choice(SAFE_ALPHABET) for _ in range(length))


def generated_name(base: str) -> str:
    """The name the API server gives an object created with `generateName: base`."""
    return base[:MAX_GENERATED_BASE] + random_suffix()


def safe_encode(text: str) -> str:
    """Each character mapped into the alphabet (Kubernetes' rand.SafeEncodeString)."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)

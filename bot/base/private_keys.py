"""An App's PEM private key parsed once per process and text (settings check it, the client signs).

OpenSSL checks an RSA key's primes on every load (~50 ms for 2048 bits, more on a loaded
machine); a bot start loaded the same text three times, and a test session starts hundreds of
bots. A text that fails to parse raises every time (failures are not cached).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key


@lru_cache(maxsize=8)
def parsed_private_key(pem: str) -> PrivateKeyTypes:
    """The key of `pem` (ValueError or TypeError when it is not an unencrypted PEM key)."""
    return load_pem_private_key(pem.encode(), password=None)

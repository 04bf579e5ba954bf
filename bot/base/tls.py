"""One verifying TLS context per process for one-off httpx calls (`httpx.post(..., verify=...)`).

httpx builds a new context, loading the CA bundle, for every client, and `httpx.post` makes a
client per call: ~30-90 ms of CPU per request even to a plain-HTTP loopback URL. Sharing the
context keeps each call's fresh connection and the same verification.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def shared_tls() -> ssl.SSLContext:
    """httpx's default context (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once."""
    return httpx.create_ssl_context()

"""Device tokens and ids: generation, hashing and the Mosquitto password hash.

A plain token exists only in the response that creates it; everything kept is a hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

TOKEN_BYTES = 20  # 160 bits; the spec asks for at least 128
PREFIX_LEN = 8
MIN_PREFIX_LEN = 6  # shorter prefixes would too often be ambiguous

# Mosquitto 2.x `$7$` format (mosquitto_passwd's default, sha512-pbkdf2); these values are
# what mosquitto_passwd itself uses, so our lines are indistinguishable from its own.
_MOSQ_ITERATIONS = 101
_MOSQ_SALT_BYTES = 12
_MOSQ_DIGEST_BYTES = 64


def new_token() -> str:
    """A fresh device token: 40 lowercase hex characters (160 random bits)."""
    return secrets.token_hex(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The token's storage key: SHA-256 hex.

    A fast unsalted hash is the right tool here, unlike for passwords: tokens carry 160
    random bits, so there is nothing to brute-force or look up in a table, and every
    request must be able to find its token by hash in one indexed look-up.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_prefix(token: str) -> str:
    """The first characters of a token, shown in listings and accepted by ``revoke``."""
    return token[:PREFIX_LEN]


def hashes_equal(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about a stored hash."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def mosquitto_hash(token: str, salt: bytes | None = None) -> str:
    """The token as a Mosquitto 2.x password-file hash: ``$7$101$<b64 salt>$<b64 hash>``."""
    if salt is None:
        salt = secrets.token_bytes(_MOSQ_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", token.encode("utf-8"), salt,
                                 _MOSQ_ITERATIONS, _MOSQ_DIGEST_BYTES)
    return (f"$7${_MOSQ_ITERATIONS}${base64.b64encode(salt).decode('ascii')}"
            f"${base64.b64encode(digest).decode('ascii')}")


def mosquitto_verify(token: str, hashed: str) -> bool:
    """Whether ``token`` matches a ``$7$`` hash (as the broker would decide)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", token.encode("utf-8"), salt, iterations,
                                 len(expected) or _MOSQ_DIGEST_BYTES)
    return hmac.compare_digest(digest, expected)


def new_device_id() -> str:
    """24 lowercase hex characters, like TagoIO ids: 8 of unix seconds, then 16 random, so
    ids sort roughly by creation time."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(8)}"

"""RSA key pairs for local actors."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def generate_key_pair() -> tuple[str, str]:
    """A fresh RSA-2048 pair as (PKCS#8 private PEM, SubjectPublicKeyInfo public PEM), as Mastodon expects."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def load_own_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """One of our own actors' private keys, from its PEM.

    The key's consistency checks (primality of its factors...) are skipped: they cost ~40 ms a key,
    a thousand times the parse itself, and they guard against keys from elsewhere. Ours are made by
    `generate_key_pair` and only ever read back from our own database.
    """
    key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"the key is not an RSA key ({type(key).__name__})")
    return key

#!/usr/bin/env python3
"""Prints end-to-end encryption test vectors made by SMS Gateway for Android's Python client.

The engine's tests (core/engine/src/e2e.rs) decrypt every vector and re-encrypt it with the
vector's salt, byte for byte. Regenerate the fixture with:

    python3 -m venv target/e2e-venv
    target/e2e-venv/bin/pip install 'android-sms-gateway[encryption]==4.3.3'
    target/e2e-venv/bin/python scripts/e2e-vectors.py > core/engine/tests/data/e2e_vectors.json

With `--decrypt`, it reads vectors of the same shape from stdin instead (ciphertexts made by
the engine) and checks that the Python client decrypts each to its plaintext.

Passphrases are ASCII: the Python client hands its passphrase to pycryptodome's PBKDF2 as a
str, which encodes it as Latin-1, while the Android app (PBKDF2WithHmacSHA1) and this engine
use UTF-8. Non-ASCII passphrases therefore do not interoperate with the Python client.
"""

import json
import sys

from android_sms_gateway.encryption import Encryptor

# (passphrase, iterations, plaintext): small iteration counts keep the Rust tests fast in a
# debug build; one vector uses the client's default.
CASES = [
    ("correct horse battery staple", 75_000, "+15551230001"),
    ("s3cret", 1, "Hello"),
    ("s3cret", 2, ""),
    ("s3cret", 10, "+491701234567"),
    ("another passphrase", 100, "Grüße aus Köln – Привет, мир! 你好 👋"),
    ("s3cret", 1000, "Your code is 123456. Do not share it."),
    ("p", 7, "exactly16bytes!!"),
    ("long " * 20, 3, "x" * 500),
]


def check(vectors: list) -> None:
    for v in vectors:
        got = Encryptor(v["passphrase"]).decrypt(v["ciphertext"])
        assert got == v["plaintext"], v["ciphertext"]
    print(f"the Python client decrypted all {len(vectors)} values")


def main() -> None:
    if sys.argv[1:] == ["--decrypt"]:
        check(json.load(sys.stdin))
        return
    vectors = []
    for passphrase, iterations, plaintext in CASES:
        assert passphrase.isascii(), "see the module doc"
        encryptor = Encryptor(passphrase, iterations=iterations)
        ciphertext = encryptor.encrypt(plaintext)
        assert encryptor.decrypt(ciphertext) == plaintext
        vectors.append(
            {
                "passphrase": passphrase,
                "iterations": iterations,
                "plaintext": plaintext,
                "ciphertext": ciphertext,
            }
        )
    json.dump(vectors, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Verifies a gatehouse access token in another program, from the JWKS URL alone, with
an off-the-shelf JWT library (PyJWT, Debian's python3-jwt): no shared secret, no call
to gatehouse but the public key set.

    python3 examples/verify-jwks/verify.py http://127.0.0.1:8000/.well-known/jwks.json TOKEN

Prints the token's subject, scopes, algorithm and key id, or exits 1 naming the error.
"""
import sys

import jwt  # PyJWT


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: verify.py JWKS_URL TOKEN", file=sys.stderr)
        return 2
    jwks_url, token = sys.argv[1], sys.argv[2]
    try:
        key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
        # The algorithms this program accepts; the token's own `alg` never chooses.
        claims = jwt.decode(token, key.key, algorithms=["ES256", "RS256", "EdDSA"],
                            options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    header = jwt.get_unverified_header(token)
    print(f"verified: sub={claims['sub']} scopes={claims.get('scopes', [])} "
          f"alg={header['alg']} kid={header.get('kid')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

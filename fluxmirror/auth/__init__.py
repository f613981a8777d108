"""Registry credentials: signing keys, signed JWTs and the key pairs `keygen` writes."""

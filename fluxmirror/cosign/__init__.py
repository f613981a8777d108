"""Cosign keyless signature verification (docs/verify.md): what a signature must prove before a tag
is mirrored, on top of sigstore-python.

sigstore-python checks the cryptography (certificate chain to the trusted root at the signing time,
the embedded SCT, the transparency-log entry and its signed promise, the signature itself); this
package adds what it leaves to its caller: which identities are accepted (`identity`), that the
signed statement names the image being mirrored (`statement`), legacy `.sig` signatures
(`legacy`), the trusted root (`trust`), and the one verdict per signature (`verifier`). It does no
registry I/O; `fluxmirror.sync.verify` finds the signatures and hands their bytes here.
"""

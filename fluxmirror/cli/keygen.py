"""`keygen`: write an Ed25519 JWK key pair for `credential.jwkPath`."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxmirror.cli.options import GlobalTimeoutOption, NoEnvsubstOption

__all__ = ["keygen"]


def keygen(
    output_dir: Annotated[
        str, typer.Option("--output-dir", "-o", help="Directory for pubkey.json and privkey.json.")
    ] = ".",
    timeout: GlobalTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Generate an EdDSA (Ed25519) JSON Web Key pair for JWK-based registry auth."""
    del timeout, no_envsubst  # persistent flags: accepted (and parsed) by every command, unused here
    # Imported here: cryptography would cost every other command ~15 ms of start-up.
    from fluxmirror.auth.keygen import write_key_pair

    paths = write_key_pair(output_dir)
    typer.echo(f"✔ private key set written to: {paths.private}")
    typer.echo(f"✔ public key set written to: {paths.public}")
    return 0

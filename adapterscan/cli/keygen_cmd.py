"""`adapterscan keygen`: an ECDSA P-256 key pair for signing attestations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapterscan.cli.common import fail, run_or_exit
from adapterscan.provenance.names import PASSPHRASE_ENV


def keygen_command(
    out_private: Annotated[Path, typer.Option("--out-private", help="private key PEM (mode 0600)")],
    out_public: Annotated[Path, typer.Option("--out-public", help="public key PEM")],
    passphrase_env: Annotated[str, typer.Option(
        help="encrypt the private key with the passphrase in this environment variable, "
        "when it is set")] = PASSPHRASE_ENV,
    force: Annotated[bool, typer.Option(help="overwrite existing files")] = False,
) -> None:
    """Create a key pair for `adapterscan scan --sign-key` and `adapterscan verify --key`."""
    # cryptography is imported by the command that uses it, not by every CLI start.
    from adapterscan.provenance.keys import (
        generate_private_key,
        key_hint,
        write_private_key,
        write_public_key,
    )

    passphrase = os.environ.get(passphrase_env)
    for path in (out_private, out_public):
        if path.exists() and not force:
            fail(f"{path}: already exists (pass --force to overwrite)")
    key = generate_private_key()
    run_or_exit(lambda: write_private_key(out_private, key,
                                          passphrase.encode() if passphrase else None,
                                          overwrite=force))
    run_or_exit(lambda: write_public_key(out_public, key.public_key(), overwrite=force))
    Console(stderr=True, highlight=False).print(
        f"private key: {out_private} ({'encrypted' if passphrase else 'not encrypted'}, 0600)\n"
        f"public key:  {out_public} (sha256 {key_hint(key.public_key())})")

"""Names the command line needs before any key is touched (no cryptography import)."""

from __future__ import annotations

PASSPHRASE_ENV = "ADAPTERSCAN_KEY_PASSPHRASE"

"""Full checkpoints scanned as a delta against their base model (docs/delta.md)."""

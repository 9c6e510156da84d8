"""The inventory: every entry classified by name and content (AS40x-AS41x)."""

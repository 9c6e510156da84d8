"""Pickles, torch zip archives and NumPy files, walked opcode by opcode, never unpickled (AS4xx)."""

"""static stage."""

"""Implementation of a metapsych command (being built)."""

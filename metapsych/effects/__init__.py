"""Effect sizes with provenance, identical to metafor escalc."""

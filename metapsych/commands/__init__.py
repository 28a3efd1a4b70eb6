"""Command implementations: orchestration and terminal rendering for each CLI command."""

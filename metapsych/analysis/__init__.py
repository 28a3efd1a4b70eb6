"""Analyses: configuration, planning the grid, running, caching, diffing."""

"""Test-suite settings shared by every test module."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs the property tests with a fixed seed so that a green run is reproducible; developers'
# runs keep exploring new examples (HYPOTHESIS_PROFILE=explore forces that anywhere).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore"))

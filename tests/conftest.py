"""Shared test settings."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs are reproducible: Hypothesis draws the same examples every time (derandomize), with no
# per-example deadline on a loaded 2-core machine. Locally, examples vary from run to run.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

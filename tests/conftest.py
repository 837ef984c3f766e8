"""Test-wide settings.

Property tests run derandomized (the same examples every run), so ``make test`` and
CI are deterministic: a property that fails does so on every run, on every machine.
To look for new counter-examples, run with ``HYPOTHESIS_PROFILE=explore`` (random,
more examples); add what it finds as an ``@example``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

"""The shipped Prometheus rules pass promtool: syntax, and their own unit tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.fleetharness import ROOT

RULES = ROOT / "deploy" / "prometheus"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool"),
]


def test_rules_check() -> None:
    """promtool check rules accepts the recording and alert rules."""
    result = subprocess.run(["promtool", "check", "rules", "commsmon-rules.yml"], cwd=RULES,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests() -> None:
    """promtool test rules: isolation, endurance, channel loss and availability behave."""
    result = subprocess.run(["promtool", "test", "rules", "commsmon-rules.test.yml"], cwd=RULES,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["scrape.yml", "federation.yml"])
def test_scrape_examples_check(name: str) -> None:
    """promtool check config accepts the example scrape and federation configs."""
    result = subprocess.run(["promtool", "check", "config", name], cwd=RULES,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

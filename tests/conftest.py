"""Shared pytest fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_mini(tmp_path_factory) -> Path:
    """Root of a synthetic CASIA-FASD-layout ``mini`` set (data_prep/synth.py), made once
    per test session: train subjects 1, 2, 4, 8, 10, test subjects 1, 2, 12 videos each."""
    from configs import load_config
    from data_prep import synth

    root = tmp_path_factory.mktemp("synth") / "mini"
    synth.generate(synth.synth_params(load_config(), "mini"), root, workers=2, progress=False)
    return root

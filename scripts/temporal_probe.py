"""``python -m scripts.temporal_probe``: does a trained LSTM-CNN use the order of its frames (the logic: scripts/diagnostics/temporal_probe.py)."""
from scripts.diagnostics.temporal_probe import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m scripts.cross``: cross-dataset training and evaluation (the logic: scripts/training/cross.py)."""
from scripts.training.cross import main

if __name__ == "__main__":
    raise SystemExit(main())

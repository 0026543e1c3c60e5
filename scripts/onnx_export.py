"""``python -m scripts.onnx_export``: an ONNX model of a finished experiment, checked against Caffe (the logic: scripts/inference/onnx_export.py)."""
from scripts.inference.onnx_export import main

if __name__ == "__main__":
    raise SystemExit(main())

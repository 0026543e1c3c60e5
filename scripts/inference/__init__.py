"""Inference: scoring a video or stream with a finished experiment (Caffe, OpenCV DNN, ONNX Runtime) and the ONNX export."""

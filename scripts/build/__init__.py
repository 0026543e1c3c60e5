"""The Caffe build (setup.sh and its patches) and the relocatable bundles."""

"""The training library: one experiment from its nets to DONE (runner, trainer), model selection, Caffe I/O, curves, GPU checks, cross-dataset composition."""

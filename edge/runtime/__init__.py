"""TFLite runtime: interpreter loading, model packages, pre/post-processing."""

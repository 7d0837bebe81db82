"""Command-line front ends of the runtime that are more than argument parsing: jetson-inference-style
``run INPUT OUTPUT`` overrides (``overrides``), ``doctor`` (what this machine can run) and ``inspect``
(what an artifact says about itself)."""

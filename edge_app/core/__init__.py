"""numpy-only core shared by the runtime, conversion and calibration (no torch, no GStreamer)."""

"""GStreamer capture and outputs. ``gst.py`` is the only module that imports ``gi``."""

"""Runtime models: network artifacts on a backend, or classical OpenCV segmenters."""

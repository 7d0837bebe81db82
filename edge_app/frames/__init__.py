"""A frame on its way into a network and back: preprocessing (the one path calibration, evaluation and the
runtime share: colour order, letterbox or stretch, mean/std) and its geometry (``Letterbox``), and tiled
inference's grid (``tiles``). OpenCV lives here, not in the numpy-only core; decoders and inference both
read these geometries, neither reaches into the other for them."""

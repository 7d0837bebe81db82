"""MediaPipe's own runtime as the parity reference of an imported TFLite segmenter (its custom op is not
in TensorFlow's interpreter). Run by ``edge-app import`` with the interpreter of a venv that has
``mediapipe`` (``make import-env`` makes var/venvs/mediapipe); needs only numpy and mediapipe:

    python mediapipe_reference.py MODEL.tflite IN.npy OUT.npy

IN: (N, H, W, 3) uint8 RGB at the model's input size; OUT: (N, H, W) float32 confidence of the last
category (the foreground), from MediaPipe Tasks' ImageSegmenter.
"""
import sys

import numpy as np


def main(model: str, src: str, dst: str) -> int:
    import mediapipe as mp
    from mediapipe.tasks import python
    from mediapipe.tasks.python import vision

    frames = np.load(src)
    opts = vision.ImageSegmenterOptions(base_options=python.BaseOptions(model_asset_path=model),
                                        output_confidence_masks=True, output_category_mask=False)
    out = []
    with vision.ImageSegmenter.create_from_options(opts) as seg:
        for rgb in frames:
            result = seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
            out.append(np.array(result.confidence_masks[-1].numpy_view(), np.float32))
    np.save(dst, np.stack(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))

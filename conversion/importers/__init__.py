"""Importers of models made elsewhere (``edge-app import``), one module per source format:
``command`` (the command: dispatch by file, TF SSD frozen graphs and SavedModels, TFLite segmenters),
``tf_graph`` (TensorFlow graph cut and conversion), ``tflite`` (MediaPipe's custom op rewritten),
``backbone`` (a MobileNetV2 feature extractor as a torchvision state dict), ``tfjs`` (TF.js graph models),
``onnx_model`` (ONNX detectors of any head family), ``graph`` / ``parsers`` (the clean-up they share),
``mediapipe_reference`` (MediaPipe's own runtime, the TFLite parity reference, in its own venv)."""

"""Training, export and FP16/INT8/TensorRT conversion (needs the [train] extra)."""

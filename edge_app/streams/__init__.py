"""Several cameras in one process: a ``Stream`` per camera (tracking, counts, rolling P/R, overlay,
outputs), one ``Batcher`` running each model once per batch of frames, and the ``StreamSet`` that adds
and removes streams while the process runs (config, HTTP API, SIGHUP)."""

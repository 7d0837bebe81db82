"""Scene analytics on detections: multi-object tracking (identities over frames), lines and zones with
counts. Numpy (and scipy's assignment solver) only; the same code runs live and offline (``edge-app
track``)."""

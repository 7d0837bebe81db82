"""New models that take over only when they measure better live, on the device and from the fleet.

- ``ab``: both models scored on the same labelled frames by the one matcher (``core.matching``), per class
  P / R / F1 (mIoU for segmenters) with Wilson intervals, the paired bootstrap of the difference, and the
  decision rule (non-inferiority within a margin at a confidence).
- ``shadow``: the candidate's own thread: sampled frames (and at most 1 in ``shadow_every`` others), within a
  CPU share (measured), so the live stream never waits for it.
- ``candidate``: a candidate's record (its artifact, origin, state, model, score, decision, watch).
- ``manager``: per model the candidate's life: shadow -> promoted / rejected, the atomic swap between frames,
  the watch after a promotion and the rollback; its state on disk (a restart resumes), its events.
- ``predictions``: the candidate's predictions of sampled frames, saved beside the sample until its labels come.
- ``report``: what /status says of a candidate (the A/B numbers, the decision, the shadow's cost).
- ``commands``: a fleet's signed commands (Ed25519 or HMAC-SHA256), checked as strictly as events.
- ``download``: an artifact fetched over HTTP, resumable, its size and sha256 verified before it exists.
- ``agent``: the device's side of a fleet rollout (commands from MQTT, the download, the candidate).
- ``api``: ``/api/models`` on the live server.
"""

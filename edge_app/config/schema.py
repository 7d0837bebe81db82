"""The configuration schema: frozen dataclasses, one per section of ``config.toml``.

Each field's ``doc`` is the one-line description; ``config.toml`` documents every key in comments and a
test checks that it names every field here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..core.artifact import RUN_PRECISIONS
from ..core.operating_point import DETECTOR
from .loader import spec
from ..sources.registry import SCHEMES

SOURCE_SCHEMES = SCHEMES  # the source registry's schemes (sources/registry.py): a scheme is added there once
MODEL_KINDS = ("detector", "segmenter", "classical")
CLASSICAL_METHODS = ("otsu", "adaptive", "kmeans", "canny")
PRECISIONS = ("auto",) + RUN_PRECISIONS
BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt")


@dataclass(frozen=True)
class SourceConfig:
    uri: str = spec("synthetic://", doc="where frames come from: synthetic://, test://, "
                    "file:///path.mp4, replay:///dataset, v4l2:///dev/video0, csi://0, rtsp://host/path")
    width: int = spec(640, ge=16, le=7680, doc="frame width delivered to the models (pixels; replayed "
                      "images and their labels are scaled to it)")
    height: int = spec(480, ge=16, le=4320, doc="frame height (pixels)")
    fps: float = spec(15.0, gt=0, le=240, doc="frame rate asked of the source (replay/synthetic play at it)")
    loop: bool = spec(True, doc="file and replay sources start again at the end")
    realtime: bool = spec(True, doc="file/replay/synthetic: play at the stream's rate, dropping frames the "
                          "models miss (as a camera); false: every frame, as fast as the models go")
    rtsp_transport: str = spec("tcp", choices=("tcp", "udp"), doc="RTSP lower transport")
    rtsp_latency_ms: int = spec(200, ge=0, le=10000, doc="rtspsrc jitter buffer (ms)")
    reconnect_initial_s: float = spec(0.5, gt=0, le=60, doc="first reconnect delay after a lost source")
    reconnect_max_s: float = spec(10.0, gt=0, le=600, doc="reconnect back-off ceiling")
    stall_timeout_s: float = spec(5.0, gt=0, le=600, doc="a live source that delivers no frame for this "
                                  "long is lost (rebuilt with back-off)")
    seed: int = spec(0, ge=0, doc="seed of the synthetic scene generator")


@dataclass(frozen=True)
class TrackerConfig:
    """A detector's multi-object tracker (``analytics.tracker``; ByteTrack-style)."""

    enabled: bool = spec(False, doc="track this detector's objects (identities, trails, line and zone counts)")
    high_score: float = spec(0.5, ge=0, le=1, doc="detections at least this take part in the first association")
    low_score: float = spec(0.1, ge=0, le=1, doc="... and from here up to high_score in the second (keeps "
                            "partly hidden objects)")
    new_track_score: float = spec(0.6, ge=0, le=1, doc="a detection no track took starts a track from this score")
    match_iou: float = spec(0.3, gt=0, le=1, doc="IoU gate of the first association")
    low_iou: float = spec(0.5, gt=0, le=1, doc="IoU gate of the second association (weak detections)")
    tentative_iou: float = spec(0.1, gt=0, le=1, doc="IoU gate for tracks not confirmed yet")
    min_hits: int = spec(3, ge=1, le=100, doc="hits that confirm a track; only confirmed tracks have an id")
    lost_s: float = spec(2.0, ge=0, le=600, doc="seconds a lost track is kept to re-identify the object")
    fuse_score: bool = spec(True, doc="weigh IoU by detection score in the first association")
    low_revives_lost: bool = spec(True, doc="lost tracks also take part in the second association")
    report: str = spec("detection", choices=("detection", "filtered"),
                       doc="track boxes shown: the matched detection, or the Kalman-filtered box")
    reupdate: bool = spec(True, doc="OC-SORT's observation-centric re-update: a track found again after a gap "
                          "re-runs its filter along the straight path between its two observations")
    direction_weight: float = spec(0.2, ge=0, le=1, doc="OC-SORT's direction consistency: weight of the "
                                   "agreement between a track's observed heading and a detection (0 = off)")
    recover_buffer: float = spec(0.0, ge=0, le=2, doc="lost tracks left unmatched get one more chance with "
                                 "boxes grown by this share of their size per side (0 = off)")
    recover_last: bool = spec(False, doc="OC-SORT's observation-centric recovery: tracks still unmatched get one "
                              "more chance by the box where they were last seen")
    measurement_noise: float = spec(4.0, gt=0, le=100, doc="the Kalman filter's detection noise, as a multiple "
                                    "of SORT's (1/20 of the box height): higher trusts each box less and the "
                                    "track's motion more")
    occluded_lost_s: float = spec(0.0, ge=0, le=600, doc="a lost track hidden behind a tracked object (its "
                                  "predicted box half covered by one whose bottom is lower: in front) is kept this "
                                  "long instead of lost_s (0 = lost_s for all)")
    recover_motion: float = spec(0.0, ge=0, le=5, doc="lost tracks still unmatched get a last chance by motion: a "
                                 "high-score detection of a like size within this many box heights of the predicted "
                                 "centre, not behind the track's heading (0 = off)")
    freeze_lost_size: bool = spec(True, doc="a lost track's predicted box keeps its size (its size velocity is "
                                  "dropped), as ByteTrack and BoT-SORT do")
    camera_motion: str = spec("flow", choices=("off", "flow"), doc="camera-motion compensation from the "
                              "frames (sparse optical flow on a downscaled frame); nothing without frames")
    depth_levels: int = spec(1, ge=1, le=20, doc="SparseTrack's depth cascade: the first association runs band by "
                             "band of pseudo-depth (a box's bottom edge), the nearest first (1 = one band: off)")
    appearance_weight: float = spec(0.0, ge=0, le=1, doc="weight of a colour-histogram appearance cue in "
                                    "the first association, when frames exist (0 = off)")
    boost_overlap: float = spec(0.0, ge=0, le=1, doc="BoostTrack's likely-object boost: a detection's score "
                                "for association is raised to this x its best IoU with a track's predicted box, "
                                "so a weak detection on a known object joins the first association (0 = off)")
    boost_unexplained: bool = spec(False, doc="BoostTrack's unlikely-object boost: a weak detection no track's "
                                   "motion explains (Mahalanobis, 99 %), the strongest of those overlapping it, "
                                   "is taken as strong and may start a track")
    motion_weight: float = spec(0.0, ge=0, le=1, doc="weight of the motion cue in the first association: each "
                                "track's share of likelihood (Mahalanobis) among the detections it may take (0 = off)")
    recency_weight: float = spec(0.0, ge=0, le=2, doc="BoostTrack's track confidence in the first association: "
                                 "IoU x detection score x track confidence (0.9 per 30 fps frame unseen) added with "
                                 "this weight, so a track seen last frame wins over one lost a while (0 = off)")
    shape_weight: float = spec(0.25, ge=0, le=1, doc="weight of the shape cue in the first association: width and "
                               "height alike, by detection score x track confidence (0 = off)")


@dataclass(frozen=True)
class CandidateConfig:
    """A shadow model beside the live one (``edge_app.rollout``): it takes over only when it measures as good."""

    artifact: str = spec("", doc="the candidate's ONNX artifact (same task and classes as the model); \"\" = none; "
                         "relative to this file")
    thresholds_file: str = spec("", doc="its per-class thresholds, which travel with it on promotion (\"\" = "
                                "<artifact>.thresholds.json beside it when present)")
    precision: str = spec("auto", choices=PRECISIONS, doc="the candidate's precision (as the model's)")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = spec(choices=MODEL_KINDS, doc="detector | segmenter | classical (OpenCV baseline)")
    artifact: str = spec("", doc="ONNX artifact (its metadata names classes, input size, "
                         "normalisation); relative to this file; unused by classical")
    enabled: bool = spec(True, doc="load and run this model")
    precision: str = spec("auto", choices=PRECISIONS,
                          doc="artifact precision: fp32, bf16 (the FP32 file computed in bfloat16: openvino on a CPU "
                          "with BF16), fp16, int8 (ONNX Runtime CPU style), int8-qdq (TensorRT style); auto = "
                          "calibration's recommendation for this CPU (re-measured on another CPU) and for the "
                          "setting the model runs (whole frame or its tiles), else fp32")
    backend: str = spec("auto", choices=BACKENDS,
                        doc="onnxruntime, openvino (the [openvino] extra) or tensorrt; auto = TensorRT when an "
                        "up-to-date engine exists, else calibration's recommendation for this CPU, else ONNX Runtime")
    score_threshold: float = spec(DETECTOR.score_threshold, ge=0, le=1, doc="detections scoring at least this "
                                  "are kept (per-class values from thresholds_file win)")
    nms_iou: float = spec(DETECTOR.nms_iou, gt=0, le=1, doc="class-aware NMS IoU threshold")
    top_k: int = spec(DETECTOR.top_k, ge=1, le=100000, doc="candidates kept before NMS")
    max_detections: int = spec(DETECTOR.max_detections, ge=1, le=10000, doc="detections kept after NMS")
    thresholds_file: str = spec("", doc="calibration's thresholds JSON (\"\" = none); relative to this "
                                "file; reloaded on SIGHUP")
    method: str = spec("kmeans", choices=CLASSICAL_METHODS, doc="classical segmenter's method")
    classes: tuple[str, ...] = spec(factory=lambda: ("background", "foreground"),
                                    doc="classical segmenter's class names")
    alpha: float = spec(0.45, ge=0, le=1, doc="mask overlay opacity (segmenters)")
    tiles: tuple[int, ...] = spec(factory=lambda: (1, 1), ge=1, le=16, doc="detector: [cols, rows] tiles each "
                                  "frame is cut into, run as one batch and merged (small objects); [1, 1] = none")
    overlap: float = spec(0.2, ge=0, le=0.9, doc="tiles overlap by this fraction of a tile's width / height")
    full_frame: bool = spec(True, doc="with tiles: the whole frame is run too (large objects)")
    roi: tuple[tuple[tuple[float, ...], ...], ...] = spec(factory=tuple, doc="detector: regions of interest, "
                                                          "polygons [[x, y], ...]: only tiles touching one run, only "
                                                          "detections centred in one are kept ([] = everywhere)")
    roi_units: str = spec("pixels", choices=("pixels", "normalized"), doc="roi points in frame pixels, or 0..1")
    class_groups: dict[str, tuple[str, ...]] = spec(factory=dict, doc="detector: classes that are one object "
                                                    "for NMS, tracking and counting, e.g. {vehicle = [\"car\", "
                                                    "\"truck\"]}; lines/zones may name the group")
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    keep: tuple[str, ...] = spec(factory=tuple, doc="detector: only these classes (or class groups) are reported, "
                                 "tracked and counted; the others are dropped ([] = all; Frigate's objects.track)")
    candidate: CandidateConfig = field(default_factory=CandidateConfig)


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = spec(True, doc="serve the live page, MJPEG, /status, /metrics, /healthz")
    host: str = spec("127.0.0.1", doc="bind address; anything but loopback requires token")
    port: int = spec(8080, ge=0, le=65535, doc="TCP port (0 = any free port)")
    token: str = spec("", doc="bearer token required by every request when set")
    jpeg_quality: int = spec(80, ge=10, le=100, doc="MJPEG quality")
    head_timeout_s: float = spec(10.0, gt=0, le=300, doc="a client has this long to send a request's line and "
                                 "headers (a slow sender is cut off, its thread freed)")
    body_timeout_s: float = spec(30.0, gt=0, le=3600, doc="and this long for its body and our answer (MJPEG "
                                 "streams are exempt once they start)")
    max_connections: int = spec(128, ge=1, le=10000, doc="open connections at most; more are answered 503")


@dataclass(frozen=True)
class RtspConfig:
    enabled: bool = spec(False, doc="serve the annotated stream over RTSP (H.264)")
    host: str = spec("127.0.0.1", doc="bind address; beyond loopback needs allow_remote (no authentication)")
    allow_remote: bool = spec(False, doc="allow an RTSP bind beyond loopback (the stream is unauthenticated)")
    port: int = spec(8554, ge=1, le=65535, doc="RTSP port")
    path: str = spec("/live", doc="mount path, e.g. rtsp://host:8554/live")
    bitrate_kbps: int = spec(2000, ge=100, le=100000, doc="H.264 bitrate")


@dataclass(frozen=True)
class RecordConfig:
    enabled: bool = spec(False, doc="record the annotated stream to MP4 segments")
    directory: str = spec("recordings", doc="where segments go; relative to runtime.state_dir")
    segment_s: int = spec(60, ge=1, le=86400, doc="segment length (s)")
    max_files: int = spec(10, ge=0, le=100000, doc="oldest segments deleted beyond this (0 = keep all)")
    file: str = spec("", doc="one MP4 file of that name in directory instead of segments (\"\" = segments)")


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = spec(False, doc="publish events, retained status and availability over MQTT")
    url: str = spec("mqtt://127.0.0.1:1883", doc="broker: mqtt://host[:1883] or mqtts://host[:8883] (TLS); "
                    "user:password@ here or in username/password")
    topic_prefix: str = spec("edge", doc="topics are <prefix>/<device>/events, /status, /availability, /snapshot/...")
    device_id: str = spec("", doc="this device's name in topics and event ids (\"\" = the host name)")
    client_id: str = spec("", doc="MQTT client id (\"\" = edge-<device>)")
    username: str = spec("", doc="broker user (\"\" = none, or the one in url)")
    password: str = spec("", doc="broker password")
    ca_file: str = spec("", doc="CA certificates for mqtts:// (\"\" = the system's)")
    cert_file: str = spec("", doc="client certificate for mqtts:// (\"\" = none)")
    key_file: str = spec("", doc="client key for cert_file")
    keepalive_s: int = spec(30, ge=5, le=3600, doc="MQTT keep-alive: the broker publishes the Last Will "
                            "'offline' about 1.5 x this after the device vanished")
    status_every_s: float = spec(10.0, gt=0, le=3600, doc="retained status (fps, source, rolling P/R, counts) interval")
    ha_discovery: bool = spec(True, doc="announce counts and availability to Home Assistant (MQTT discovery)")


@dataclass(frozen=True)
class OutputConfig:
    http: HttpConfig = field(default_factory=HttpConfig)
    rtsp: RtspConfig = field(default_factory=RtspConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)


@dataclass(frozen=True)
class RollingConfig:
    iou: float = spec(0.5, gt=0, le=1, doc="IoU at which a detection matches a label")
    window_frames: int = spec(200, ge=1, le=1000000, doc="rolling window: last K labelled frames")
    window_seconds: float = spec(60.0, gt=0, doc="rolling window: last T seconds")
    log_every_s: float = spec(10.0, gt=0, doc="JSON metrics line interval")
    precision_floor: float = spec(0.5, ge=0, le=1, doc="warn (drift) when rolling precision falls below")
    recall_floor: float = spec(0.5, ge=0, le=1, doc="warn (drift) when rolling recall falls below")
    min_labelled: int = spec(20, ge=1, doc="labelled frames needed before drift warnings")


@dataclass(frozen=True)
class LabelsConfig:
    labels_file: str = spec("", doc="labels of a recorded video: COCO JSON (image id = frame index) "
                            "or a folder of per-frame VOC XML (\"\" = none)")
    inbox: str = spec("inbox", doc="label inbox folder (relative to runtime.state_dir): a label for a saved sample is scored when it "
                      "appears (the /review page writes there; \"\" = off; needs sampling)")
    samples_dir: str = spec("samples", doc="where sampled frames and predictions are saved (relative to "
                             "runtime.state_dir)")
    sample_every: int = spec(30, ge=0, doc="save one frame in N with its predictions, for labelling "
                             "(0 = no sampling)")
    max_samples_mb: int = spec(200, ge=1, doc="disk cap of samples_dir; oldest removed first")
    uncertain_margin: float = spec(0.1, ge=0, le=1, doc="also save frames with a detection scoring within this "
                                   "of its class threshold, where the model is least sure (0 = off)")
    disagreements: bool = spec(True, doc="also save frames where a confirmed track found no detection")
    extra_per_minute: int = spec(6, ge=0, doc="cap on the frames saved for uncertainty or disagreement")
    max_boxes: int = spec(1000, ge=1, le=100_000, doc="the most boxes one review (/review, the label API) may "
                          "carry; more is refused with 413")


@dataclass(frozen=True)
class EventsConfig:
    """The event stream (schema in events/schema.py), for MQTT and the JSON-lines file."""

    file: str = spec("", doc="JSON-lines file of every event (\"\" = none); relative to this file")
    state_dir: str = spec("events", doc="the durable outbox, the event sequence number, snapshots (relative "
                           "to runtime.state_dir)")
    outbox_max_mb: int = spec(100, ge=1, doc="disk cap of unsent messages; beyond it the oldest are dropped, counted")
    reserve_mb: int = spec(32, ge=0, doc="free space kept for the outbox on its disk: samples, snapshots and "
                           "recordings there stop short of it, so a full disk never costs an event")
    snapshots: bool = spec(True, doc="save the best-scoring frame of each track (crop + frame JPEG)")
    snapshots_max_mb: int = spec(200, ge=1, doc="disk cap of the snapshots; oldest removed first")
    counts_every_s: float = spec(60.0, gt=0, doc="a counts event (lines, zones) this often")
    track_update_s: float = spec(0.0, ge=0, doc="a track_update event per track this often (0 = none)")


@dataclass(frozen=True)
class LoggingConfig:
    level: str = spec("info", choices=("debug", "info", "warning", "error"), doc="log level")
    file: str = spec("log/edge-app.jsonl", doc="rotating JSON-lines log (\"\" = stdout only; relative to "
                      "runtime.state_dir)")
    max_bytes: int = spec(10_000_000, ge=10_000, doc="rotate the log file at this size")
    backups: int = spec(3, ge=0, le=100, doc="rotated log files kept")


@dataclass(frozen=True)
class RuntimeConfig:
    threads: int = spec(2, ge=1, le=256, doc="inference threads per model (ONNX Runtime intra-op); with several "
                        "streams each of the inference_workers gets threads / inference_workers of them")
    wedged_after_s: float = spec(15.0, ge=1, le=3600, doc="a pipeline thread that has not come round its "
                                 "loop for this long is stuck: watchdog pings stop and systemd restarts")
    engine_dir: str = spec("engines", doc="TensorRT engines and their manifests (relative to state_dir)")
    state_dir: str = spec("var", doc="everything the device writes goes under this folder (samples, inbox, "
                          "events, log, recordings, engines), relative to this file; `edge-app run --state-dir`; "
                          "/var/lib/edge-app under systemd")
    max_batch: int = spec(8, ge=1, le=64, doc="frames of different streams run in one model call, at most "
                          "(artifacts with a dynamic batch axis; others run frame by frame)")
    inference_workers: int = spec(2, ge=1, le=16, doc="threads running the models, each on other streams' "
                                  "frames (with several streams, two overlap one frame's Python work with "
                                  "another's inference, as two processes would, with one copy of each model)")
    batching: str = spec("auto", choices=("auto", "on", "off", "requests"), doc="how several images of a model "
                         "(frames of several streams, tiles of a frame) reach its backend: on = one call (dynamic "
                         "batch); off = one call each, in turn; requests = one call each, several in flight "
                         "(threads split); auto = measured at start for each model and backend, the fastest")
    batch_timeout_ms: float = spec(10.0, ge=0, le=1000, doc="wait this long for the other streams' frames "
                                   "before running a partial batch (nvstreammux's batched-push-timeout)")


@dataclass(frozen=True)
class RolloutConfig:
    """Shadow runs, the promotion rule, the watch after a promotion, and the fleet's commands."""

    state_dir: str = spec("var/rollout", doc="which artifact each model runs (survives restarts), downloaded "
                          "artifacts, the commands applied")
    shadow_every: int = spec(10, ge=0, doc="the candidate runs on every sampled frame and on at most 1 in N of "
                             "the others (0 = sampled frames only)")
    shadow_share: float = spec(0.25, gt=0, le=4, doc="CPU budget of the candidate: seconds of CPU per second "
                               "(0.25 = a quarter of one core), measured with its thread's CPU clock (normal priority: a lower one "
                               "made the live threads wait for the GIL it held)")
    frames: int = spec(100, ge=5, le=100000, doc="labelled frames scored by both models before the decision")
    margin: float = spec(0.02, ge=0, le=1, doc="promote when the candidate is not worse than the current by more "
                         "than this (F1 for detectors, mIoU for segmenters)")
    confidence: float = spec(0.95, gt=0.5, lt=1, doc="one-sided confidence of that statement (paired bootstrap "
                             "over frames)")
    resamples: int = spec(2000, ge=100, le=100000, doc="bootstrap resamples")
    auto_promote: bool = spec(True, doc="act on the decision (false: report it; promote with POST "
                              "/api/models/NAME/promote)")
    watch_frames: int = spec(100, ge=0, doc="after a promotion, labelled frames (as far apart as the decision's) "
                             "on which the new model's metric must stay within the previous model's interval (0 = no watch)")
    watch_s: float = spec(120.0, gt=0, doc="how long the health of a promoted model is watched (errors, latency)")
    max_latency_ratio: float = spec(2.0, ge=1, doc="health: the promoted model's live latency (p50) over the "
                                    "previous model's above this rolls it back")
    max_error_rate: float = spec(0.05, ge=0, le=1, doc="health: the share of frames on which the promoted model "
                                 "raised an error above this rolls it back")
    fleet_public_key: str = spec("", doc="the fleet's Ed25519 public key (base64 of its 32 bytes): fleet commands "
                                 "must carry its signature (needs the cryptography package)")
    fleet_secret: str = spec("", doc="or a shared secret: commands signed with HMAC-SHA256 (\"\" and no key = "
                             "fleet commands are refused)")
    fleet_token: str = spec("", doc="bearer token this device shows the fleet when it downloads an artifact")


ANCHORS = ("bottom_center", "center", "top_center")


@dataclass(frozen=True)
class LineConfig:
    name: str = spec(doc="the line's name (letters, digits, '_' or '-'): in /status, /metrics, events")
    points: tuple[tuple[float, ...], ...] = spec(factory=tuple, doc="two points [x, y]: the segment (not its "
                                                 "extension) is what a track must cross")
    units: str = spec("pixels", choices=("pixels", "normalized"), doc="points in frame pixels, or 0..1 of "
                      "width and height")
    classes: tuple[str, ...] = spec(factory=tuple, doc="classes counted ([] = all)")
    model: str = spec("", doc="the detector whose tracks are counted (\"\" = every tracked detector)")
    margin: float = spec(0.2, ge=0, le=2, doc="hysteresis: a side counts only this far from the line (a share "
                         "of the object's box height), so feet jittering across it never count")


@dataclass(frozen=True)
class ZoneConfig:
    name: str = spec(doc="the zone's name (letters, digits, '_' or '-')")
    points: tuple[tuple[float, ...], ...] = spec(factory=tuple, doc="the polygon's corners [x, y] (>= 3, "
                                                 "not self-intersecting)")
    units: str = spec("pixels", choices=("pixels", "normalized"), doc="points in frame pixels, or 0..1")
    classes: tuple[str, ...] = spec(factory=tuple, doc="classes counted ([] = all)")
    model: str = spec("", doc="the detector whose tracks are counted (\"\" = every tracked detector)")
    margin: float = spec(0.1, ge=0, le=2, doc="hysteresis: an object enters once its anchor is this far "
                         "inside (a share of its box height) and leaves once as far outside")
    settle_s: float = spec(1.0, ge=0, le=60, doc="... or once it has stayed on the other side this long "
                           "(seconds; 0 = the margin only)")


@dataclass(frozen=True)
class AnalyticsConfig:
    """Lines and zones of the stream, counted on confirmed tracks."""

    anchor: str = spec("bottom_center", choices=ANCHORS, doc="the point of a box that crosses lines and "
                       "stands in zones (bottom centre: where a person's feet are)")
    trail_s: float = spec(2.0, ge=0, le=60, doc="seconds of trail drawn behind each track")
    memory_s: float = spec(8.0, ge=0, le=60, doc="counting memory: a new id that appears where an identity "
                           "unseen for up to this long would be by now takes over its side of each line, so a "
                           "person who crossed while hidden and came back under a new id counts (0 = off)")
    memory_radius: float = spec(2.0, ge=0, le=10, doc="... within this many box heights of where the vanished "
                                "one would be at its last velocity (grown with the square root of the gap in s)")
    count_at_start: bool = spec(False, doc="a track first seen within a line's margin takes the side it is on "
                                "as the one it came from (it crosses once clearly on the other side)")
    count_at_end: bool = spec(True, doc="a track that ends past a line (moving away from it, within the "
                              "margin) counts its crossing when it ends")
    lines: tuple[LineConfig, ...] = spec(factory=tuple, doc="counting lines: [[analytics.lines]] tables")
    zones: tuple[ZoneConfig, ...] = spec(factory=tuple, doc="zones: [[analytics.zones]] tables")


@dataclass(frozen=True)
class StreamConfig(SourceConfig):
    """One camera of several (``[[streams]]``): every ``[source]`` key (whose values in ``[source]`` are
    the defaults of every stream), and what is the stream's own."""

    name: str = spec("", doc="the stream's name (letters, digits, '_' or '-', starting with a letter): in URLs "
                     "(/streams/NAME.mjpg, the RTSP mount), /status, /metrics and events")
    models: tuple[str, ...] = spec(factory=tuple, doc="the models run on this stream's frames ([] = every "
                                   "enabled model)")
    labels_file: str = spec("", doc="this stream's labels file (as labels.labels_file)")
    rtsp: bool = spec(True, doc="an RTSP mount output.rtsp.path/NAME while output.rtsp is enabled")
    record: bool = spec(True, doc="recorded into output.record.directory/NAME while output.record is enabled")
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)


@dataclass(frozen=True)
class AppConfig:
    """The whole ``config.toml``."""

    source: SourceConfig = field(default_factory=SourceConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    output: OutputConfig = field(default_factory=OutputConfig)
    rolling: RollingConfig = field(default_factory=RollingConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    streams: tuple[StreamConfig, ...] = spec(factory=tuple, doc="several cameras: [[streams]] tables (name, uri, "
                                             "any [source] key, lines/zones, labels_file, outputs); none = [source]")
    # Directory of the config file; relative paths in it are resolved against this.
    base_dir: Path = field(default=Path("."), compare=False, init=False)

    def stream_configs(self) -> tuple[StreamConfig, ...]:
        """The streams to run: the [[streams]] tables, or the single [source] as the stream "main" (with
        the file's [analytics] and labels.labels_file)."""
        if self.streams:
            return self.streams
        fields = {f.name: getattr(self.source, f.name) for f in dataclasses.fields(SourceConfig)}
        return (StreamConfig(**fields, name="main", labels_file=self.labels.labels_file, analytics=self.analytics),)

    def state(self, value: str) -> Path:
        """A path the device writes (samples, inbox, events, log, recordings, engines), absolute: relative
        ones are taken from ``runtime.state_dir`` (itself relative to the config file's folder)."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.resolve(self.runtime.state_dir) / p

    def resolve(self, value: str) -> Path:
        """A path from the config, absolute, relative ones taken from the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

"""config.toml -> frozen dataclasses; a table of bad configs, each error naming its key path."""
import dataclasses
import subprocess
import sys
import textwrap

import pytest

from edge_app.config import AppConfig, ConfigError, field_docs, load_config


def _write(tmp_path, text, name="config.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_config_is_valid_and_frozen(repo_root):
    cfg = load_config(repo_root / "config.toml")
    assert cfg.source.uri.startswith("synthetic://")
    assert cfg.output.http.host == "127.0.0.1"
    assert any(m.enabled for m in cfg.models.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.source.fps = 1.0  # type: ignore[misc]


def _has_key(data, path):
    """Whether the parsed TOML holds this full key path ('*' = any table of a dict, e.g. any model)."""
    head, *rest = path
    if head == "*":
        return any(_has_key(v, rest) for v in data.values() if isinstance(v, dict))
    if head not in data:
        return False
    return not rest or (isinstance(data[head], dict) and _has_key(data[head], rest))


def test_shipped_config_documents_every_key(repo_root):
    import tomllib
    data = tomllib.loads((repo_root / "config.toml").read_text())
    docs = field_docs(AppConfig)
    assert any(key.startswith("models.*.") for key, _ in docs)
    undocumented = [key for key, doc in docs if not doc]
    assert not undocumented, f"schema fields without a doc: {undocumented}"
    # by full key path: a key of one section must not pass for a key of another (every 'enabled')
    missing = [key for key, _ in docs if not _has_key(data, key.split("."))]
    assert not missing, f"config.toml does not show: {missing}"
    assert not _has_key(data, ["runtime", "enabled"])  # the check itself can fail


@pytest.mark.parametrize("precision", ["auto", "fp32", "fp16", "int8", "int8-qdq"])
def test_every_precision_calibrate_can_recommend_is_accepted(tmp_path, precision):
    from edge_app.core.artifact import PRECISIONS
    assert precision == "auto" or precision in PRECISIONS
    cfg = load_config(_write(tmp_path, f"[models.d]\nkind = 'classical'\nprecision = '{precision}'\n"))
    assert cfg.models["d"].precision == precision


def test_defaults_when_sections_are_absent(tmp_path):
    cfg = load_config(_write(tmp_path, ""))
    assert cfg.source.fps == 15.0 and cfg.models == {} and cfg.rolling.iou == 0.5


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "det.onnx").write_bytes(b"x")
    cfg = load_config(_write(tmp_path, """
        [models.det]
        kind = "detector"
        artifact = "m/det.onnx"
        """))
    assert cfg.resolve(cfg.models["det"].artifact) == tmp_path / "m" / "det.onnx"


BAD_CONFIGS = [
    ("unknown section", "[sauce]\nuri = 'x'", "sauce: unknown key"),
    ("unknown key", "[source]\nfsp = 3", "source.fsp: unknown key"),
    ("wrong type int", "[source]\nwidth = '640'", "source.width = '640': expected an integer"),
    ("bool is not an int", "[source]\nwidth = true", "source.width = True: expected an integer"),
    ("wrong type bool", "[source]\nloop = 1", "source.loop = 1: expected true or false"),
    ("out of range", "[source]\nfps = 0", "source.fps = 0.0: expected a value > 0"),
    ("above range", "[models.detector]\nkind='classical'\nscore_threshold = 1.5",
     "models.detector.score_threshold = 1.5: expected a value <= 1"),
    ("choice", "[source]\nrtsp_transport = 'sctp'", "source.rtsp_transport = 'sctp': expected one of"),
    ("model kind missing", "[models.d]\nenabled = true", "models.d.kind: missing"),
    ("model kind wrong", "[models.d]\nkind = 'tracker'", "models.d.kind = 'tracker': expected one of"),
    ("artifact missing", "[models.d]\nkind = 'detector'", "models.d.artifact: missing"),
    ("artifact file absent", "[models.d]\nkind = 'segmenter'\nartifact = 'nope.onnx'",
     "models.d.artifact = 'nope.onnx'"),
    ("thresholds file absent", "[models.d]\nkind = 'classical'\nthresholds_file = 't.json'",
     "models.d.thresholds_file = 't.json'"),
    ("bad model name", "[models.'9 x']\nkind = 'classical'", "models.9 x: expected a model name"),
    ("classical needs classes", "[models.c]\nkind = 'classical'\nclasses = ['a']",
     "models.c.classes = ['a']: expected at least two"),
    ("list of wrong type", "[models.c]\nkind = 'classical'\nclasses = [1, 2]",
     "models.c.classes[0] = 1: expected a string"),
    ("scheme", "[source]\nuri = 'ftp://cam'", "source.uri = 'ftp://cam': expected a URI"),
    ("not a uri", "[source]\nuri = 'ftp://cam/1'", "source.uri = 'ftp://cam/1': expected a URI"),
    ("file source absent", "[source]\nuri = 'file:///no/such/video.mp4'", "/no/such/video.mp4 does not exist"),
    ("injection is a missing file", "[source]\nuri = 'file:///tmp/x.mp4 ! filesink location=/tmp/pwn'",
     "does not exist"),
    ("replay absent", "[source]\nuri = 'replay:///no/such/dataset'", "/no/such/dataset does not exist"),
    ("backoff order", "[source]\nreconnect_initial_s = 5.0\nreconnect_max_s = 1.0",
     "source.reconnect_initial_s = 5.0: expected <= source.reconnect_max_s"),
    ("open bind needs token", "[output.http]\nhost = '0.0.0.0'", "output.http.host = '0.0.0.0'"),
    ("port range", "[output.http]\nport = 70000", "output.http.port = 70000: expected a value <= 65535"),
    ("rtsp path", "[output.rtsp]\npath = 'live'", "output.rtsp.path = 'live'"),
    ("rtsp open bind", "[output.rtsp]\nenabled = true\nhost = '0.0.0.0'", "output.rtsp.host = '0.0.0.0'"),
    ("port clash", "[output.rtsp]\nenabled = true\nport = 8080", "output.rtsp.port = 8080"),
    ("nan", "[rolling]\niou = nan", "rolling.iou = nan: expected a finite number"),
    ("section is not a table", "source = 3", "source = 3: expected a table"),
    ("labels file absent", "[labels]\nlabels_file = 'gt.json'", "labels.labels_file = 'gt.json'"),
    ("log level", "[logging]\nlevel = 'loud'", "logging.level = 'loud': expected one of"),
    ("a key that did nothing is gone", "[runtime]\nqueue_size = 2", "runtime.queue_size: unknown key"),
    ("inbox without sampling", "[labels]\nsample_every = 0\ninbox = 'in'", "labels.inbox = 'in': has no effect"),
    ("samples dir without sampling", "[labels]\nsample_every = 0\nsamples_dir = 's'",
     "labels.samples_dir = 's': has no effect"),
    ("precision", "[models.d]\nkind = 'classical'\nprecision = 'int4'", "models.d.precision = 'int4': expected one of"),
]


@pytest.mark.parametrize("name, text, message", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_names_key_and_value(tmp_path, name, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any(message in p for p in info.value.problems), info.value.problems
    assert str(path) in str(info.value)


def test_all_problems_are_reported_at_once(tmp_path):
    path = _write(tmp_path, """
        [source]
        width = "wide"
        fps = -3
        uri = "gopher://x"
        [output.http]
        port = -1
        """)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = [p.split(" ")[0].rstrip(":") for p in info.value.problems]
    assert {"source.width", "source.fps", "source.uri", "output.http.port"} <= set(keys)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[source\nuri = 1"))


def test_config_check_cli(tmp_path, repo_root):
    ok = subprocess.run([sys.executable, "-m", "edge_app", "config", "check", str(repo_root / "config.toml")],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "synthetic://" in ok.stdout
    bad = _write(tmp_path, "[source]\nfps = 'fast'\nwidth = 0\n")
    res = subprocess.run([sys.executable, "-m", "edge_app", "config", "check", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "source.fps = 'fast'" in res.stderr and "source.width = 0" in res.stderr
    assert "2 problem(s)" in res.stderr


def test_a_source_written_as_a_path_is_its_uri_and_a_file_runs_at_its_own_size(tmp_path):
    # issue 24: source.uri took only URIs, and a 640x360 clip was letterboxed into the default 640x480
    import cv2
    import numpy as np

    clip = tmp_path / "videos" / "clip.mp4"
    clip.parent.mkdir()
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 360))
    for i in range(5):
        out.write(np.full((360, 640, 3), i * 40, np.uint8))
    out.release()
    cfg = load_config(_write(tmp_path, '[source]\nuri = "videos/clip.mp4"\n'))
    assert cfg.source.uri == f"file://{clip}"                       # relative to the config's folder
    assert (cfg.source.width, cfg.source.height) == (640, 360)     # the file's own size
    cfg = load_config(_write(tmp_path, '[source]\nuri = "videos/clip.mp4"\nwidth = 320\nheight = 240\n'))
    assert (cfg.source.width, cfg.source.height) == (320, 240)     # what the config says wins
    cfg = load_config(_write(tmp_path, '[source]\nuri = "videos"\n'))
    assert cfg.source.uri == f"replay://{clip.parent}"              # a folder is a dataset replay
    cfg = load_config(_write(tmp_path, '[[streams]]\nname = "a"\nuri = "videos/clip.mp4"\n'))
    assert (cfg.streams[0].width, cfg.streams[0].height) == (640, 360)

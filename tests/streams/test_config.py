"""[[streams]] in the config file and in POST /api/streams: one parser, one set of checks, every problem
naming its key."""
import textwrap

import pytest

from edge_app.config import ConfigError, load_config, parse_stream

ROOT_MODELS = """
[models.det]
kind = "detector"
artifact = "{root}/edge_app/demo/detector.onnx"
[models.det.tracker]
enabled = true
[models.seg]
kind = "classical"
"""


def _write(tmp_path, repo_root, body: str):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(ROOT_MODELS.format(root=repo_root)) + textwrap.dedent(body))
    return path


def test_streams_take_source_defaults_and_their_own_keys(tmp_path, repo_root):
    cfg = load_config(_write(tmp_path, repo_root, """
        [source]
        width = 320
        height = 240
        fps = 7.0
        [[streams]]
        name = "a"
        uri = "synthetic://"
        models = ["det"]
        [[streams.analytics.lines]]
        name = "l"
        points = [[100, 10], [100, 200]]
        [[streams]]
        name = "b-2"
        uri = "synthetic://?seed=4"
        fps = 12.0
        rtsp = false
    """))
    a, b = cfg.stream_configs()
    assert (a.name, a.width, a.height, a.fps, a.models) == ("a", 320, 240, 7.0, ("det",))
    assert [line.name for line in a.analytics.lines] == ["l"]
    assert (b.name, b.fps, b.width, b.rtsp, b.models) == ("b-2", 12.0, 320, False, ())


def test_single_source_is_the_stream_main(tmp_path, repo_root):
    cfg = load_config(_write(tmp_path, repo_root, """
        [source]
        uri = "synthetic://?seed=2"
        width = 320
        height = 240
        [[analytics.lines]]
        name = "l"
        points = [[100, 10], [100, 200]]
    """))
    (main,) = cfg.stream_configs()
    assert (main.name, main.uri, main.width) == ("main", "synthetic://?seed=2", 320)
    assert [line.name for line in main.analytics.lines] == ["l"]


BAD = [
    ('[[streams]]\nname = "a"\nuri = "synthetic://"\n[[streams]]\nname = "a"\nuri = "synthetic://"\n',
     "streams[1].name = 'a': another stream has this name"),
    ('[[streams]]\nname = "a b"\nuri = "synthetic://"\n', "streams[0].name = 'a b': expected letters"),
    ('[[streams]]\nname = "a/../b"\nuri = "synthetic://"\n', "streams[0].name"),
    ('[[streams]]\nname = "a"\n', "streams[0].uri: missing"),
    ('[[streams]]\nname = "a"\nuri = "ftp://x"\n', "streams[0].uri = 'ftp://x': expected a URI"),
    ('[[streams]]\nname = "a"\nuri = "file:///nonexistent/v.mp4"\n', "does not exist"),
    ('[[streams]]\nname = "a"\nuri = "synthetic://"\nfps = "x"\n', "streams[0].fps = 'x': expected a number"),
    ('[[streams]]\nname = "a"\nuri = "synthetic://"\ncolour = 1\n', "streams[0].colour: unknown key"),
    ('[[streams]]\nname = "a"\nuri = "synthetic://"\nmodels = ["nope"]\n',
     "streams[0].models[0] = 'nope': expected an enabled model"),
    ('[[streams]]\nname = "a"\nuri = "synthetic://"\nmodels = ["seg"]\n[[streams.analytics.lines]]\nname = "l"\n'
     'points = [[10, 10], [10, 100]]\n', "streams[0].analytics: lines and zones count tracks"),
    ('[[streams]]\nname = "a"\nuri = "synthetic://"\n[[streams.analytics.lines]]\nname = "l"\n'
     'points = [[10, 10], [10, 9000]]\n', "streams[0].analytics.lines[0]"),
    ('[[analytics.lines]]\nname = "l"\npoints = [[10, 10], [10, 100]]\n[[streams]]\nname = "a"\nuri = "synthetic://"\n',
     "analytics.lines: with [[streams]] lines and zones belong to a stream"),
    ('[labels]\nlabels_file = "x.json"\n[[streams]]\nname = "a"\nuri = "synthetic://"\n',
     "labels.labels_file = 'x.json': with [[streams]] a labels file belongs to a stream"),
]


@pytest.mark.parametrize("body,expected", BAD, ids=[e[:40] for _, e in BAD])
def test_bad_streams_are_named(tmp_path, repo_root, body, expected):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, repo_root, body))
    assert expected in str(err.value)


def test_api_json_gets_the_same_checks_and_the_source_defaults(tmp_path, repo_root):
    cfg = load_config(_write(tmp_path, repo_root, '[source]\nwidth = 320\nheight = 240\n'))
    ok = parse_stream(cfg, {"name": "cam", "uri": "synthetic://", "fps": 5}, taken={"main"})
    assert (ok.name, ok.width, ok.fps) == ("cam", 320, 5.0)
    with pytest.raises(ConfigError) as err:
        parse_stream(cfg, {"name": "main", "uri": "synthetic://", "fps": "fast"}, taken={"main"})
    problems = err.value.problems
    assert any(p.startswith("streams.main.fps = 'fast'") for p in problems), problems
    assert any("another stream has this name" in p for p in problems), problems
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_stream(cfg, ["x"], taken=set())

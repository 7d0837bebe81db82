"""Each model's candidate, from its start to its end: shadow -> promoted (watched) / rejected -> kept /
rolled back. One manager per device; the live pipeline only calls ``on_frame`` (a non-blocking offer) and
the label inbox ``on_labels``; decisions, swaps and health checks run on the manager's own thread.

States (``/status`` ``models.NAME.candidate.state``): ``downloading`` (a fleet artifact on its way),
``shadow`` (running beside the model, being scored), ``decided`` (a verdict waits for an operator: auto_promote
off), ``promoted`` (it is the live model; watched for ``watch_s`` and ``watch_frames``), ``kept`` (the watch
passed), ``rejected``, ``rolled_back``, ``failed`` (it could not be fetched, verified or opened), ``cancelled``.

A promotion opens the candidate with the live model's settings (threads, backend) on this thread, then
swaps it in between two batches (``Batcher.swap``): the stream never stops, the candidate's thresholds file
comes with it, and the previous model stays open for an instant rollback (and on disk: ``state.JsonState``).
Every step is an event through the durable outbox (``model_candidate``, ``model_promoted``,
``model_rejected``, ``model_rolled_back``).
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AppConfig
from ..core.artifact import read_meta, sha256_file
from ..core.types import FrameLabels
from ..logs import log_event
from .ab import PairedScore, Rule, Watch
from .candidate import Candidate, thresholds_beside
from .predictions import load_prediction, save_prediction
from .report import brief, describe
from .shadow import Job, ShadowRunner
from .state import JsonState

log = logging.getLogger("edge_app.rollout")


class RolloutManager:
    def __init__(self, cfg: AppConfig, *, live: Callable[[str], Any], opener: Callable[[str, dict[str, Any], int], Any],
                 swap: Callable[[str, Any], Any], stats: Callable[[str], tuple[int, int, float | None]],
                 emit: Callable[..., Any] | None = None, failing: Callable[[], str] | None = None,
                 samples_dir: Path | None = None) -> None:
        """live(name): the model running now; opener(name, entry, threads): a model of that name from an
        artifact entry; swap(name, model) -> the replaced one; stats(name) -> (frames, errors, seconds per
        frame p50) of the live model since its last swap; emit(kind, **fields): an event; failing() -> a
        reason when the app's health is failing, else ""; samples_dir: where candidate predictions of
        sampled frames are saved beside the sample."""
        r = cfg.rollout
        self.cfg, self.settings = cfg, r
        self.rule = Rule(frames=r.frames, margin=r.margin, confidence=r.confidence, resamples=r.resamples)
        self.live, self.opener, self.swap, self.stats = live, opener, swap, stats
        self.emit = emit or (lambda kind, **f: None)
        self.failing = failing or (lambda: "")
        self.samples_dir = samples_dir
        self.state_dir = cfg.resolve(r.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.models_state = JsonState(self.state_dir / "models.json")
        self.candidates: dict[str, Candidate] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rollout", daemon=True)
        self.on_change: Callable[[Candidate], None] | None = None  # the fleet agent reports each change

    def start(self) -> None:
        for name, m in self.cfg.models.items():
            c = m.candidate
            if m.enabled and c.artifact:
                entry = {"artifact": str(self.cfg.resolve(c.artifact)), "precision": c.precision,
                         "thresholds_file": str(self.cfg.resolve(c.thresholds_file)) if c.thresholds_file else ""}
                if entry["artifact"] == (self.models_state.get(name) or {}).get("artifact"):
                    log.info("rollout: candidate of %s was promoted before; it runs already", name)
                    continue
                try:
                    self.start_candidate(name, entry, origin="config")
                except ValueError as exc:
                    log.error("rollout: %s", exc)
        self._thread.start()

    # -- starting and stopping a candidate ---------------------------------------------------------
    def current_entry(self, name: str) -> dict[str, Any]:
        """What ``name`` runs now: the promoted artifact (state) or the config's."""
        promoted = self.models_state.get(name)
        if promoted:
            return {k: promoted[k] for k in ("artifact", "thresholds_file", "precision", "sha256") if k in promoted}
        m = self.cfg.models[name]
        return {"artifact": str(self.cfg.resolve(m.artifact)) if m.artifact else "", "precision": m.precision,
                "thresholds_file": str(self.cfg.resolve(m.thresholds_file)) if m.thresholds_file else ""}

    def start_candidate(self, name: str, entry: dict[str, Any], origin: str = "api", rollout: str = "",
                        command: str = "") -> Candidate:
        """Open ``entry``'s artifact as the shadow of model ``name`` (ValueError naming what is wrong)."""
        current = self.live(name)
        if current is None:
            raise ValueError(f"model {name!r}: no such model running")
        artifact = Path(str(entry.get("artifact", "")))
        if not artifact.is_file():
            raise ValueError(f"model {name}: candidate artifact {artifact} not found")
        if not entry.get("thresholds_file"):
            beside = thresholds_beside(artifact)
            entry = {**entry, "thresholds_file": str(beside) if beside else ""}
        entry = {"precision": "auto", **entry, "sha256": entry.get("sha256") or sha256_file(artifact)}
        try:
            meta = read_meta(artifact)
        except Exception as exc:
            raise ValueError(f"model {name}: candidate {artifact}: {exc}") from None
        if meta.task != current.task or tuple(meta.classes) != tuple(current.classes):
            raise ValueError(f"model {name}: candidate {artifact} is a {meta.task} model of classes "
                             f"{list(meta.classes)[:8]}; the live one is a {current.task} model of "
                             f"{list(current.classes)[:8]}: a candidate replaces a model of the same task and classes")
        try:
            model = self.opener(name, entry, 1)  # one inference thread: the live model keeps the cores
        except Exception as exc:
            raise ValueError(f"model {name}: candidate {artifact} cannot be opened: {exc}") from None
        with self._lock:
            old = self.candidates.get(name)
            if not (old is not None and command and old.command == command and old.state == "downloading"):
                self.cancel(name, "replaced by a new candidate", quiet=True)  # (its own download: carried on)
            cand = Candidate(name, entry, origin, rollout, command, model=model)
            cand.score = PairedScore(current.task, tuple(current.classes), self.cfg.rolling.iou, self.rule)
            cand.runner = ShadowRunner(model, self.settings.shadow_share, self.settings.shadow_every,
                                       functools.partial(self._shadow_result, cand),
                                       name=f"shadow-{name}")
            self.candidates[name] = cand
        log_event(log, logging.INFO, "model_candidate", model=name, artifact=str(artifact), origin=origin,
                  rollout=rollout)
        self.emit("model_candidate", model=name, artifact=str(artifact), sha256=entry["sha256"], origin=origin,
                  rollout=rollout)
        self._changed(cand)
        return cand

    def downloading(self, name: str, rollout: str, command: str, size: int, artifact: str = "") -> Candidate:
        """A fleet artifact on its way (``state`` downloading, ``download`` {bytes, size, error}): the fleet
        sees the device working on its command before the candidate runs. Kept across tries of one command."""
        with self._lock:
            cand = self.candidates.get(name)
            if cand is None or cand.command != command or cand.state != "downloading":
                self.cancel(name, "replaced by a new candidate", quiet=True)
                cand = Candidate(name, {"artifact": artifact, "sha256": ""}, "fleet", rollout, command,
                                 state="downloading")
                cand.progress = {"bytes": 0, "size": size, "error": ""}
                self.candidates[name] = cand
        self._changed(cand)
        return cand

    def download_failed(self, name: str, command: str, reason: str, final: bool) -> None:
        """A try failed: said in ``download.error`` (retried later), or the command ``failed`` (final)."""
        cand = self.candidates.get(name)
        if cand is None or cand.command != command or cand.state != "downloading":
            return
        cand.progress["error"] = reason
        if final:
            cand.state, cand.reason = "failed", reason
        self._changed(cand)

    def restore(self, name: str, command: str, record: dict[str, Any]) -> None:
        """The outcome of a fleet command finished before a restart (rejected, promoted, ...), so this
        device's status still answers the rollout that asked; nothing runs."""
        if name not in self.candidates:
            self.candidates[name] = Candidate(name, {"artifact": record.get("artifact", ""),
                                                     "sha256": record.get("sha256", "")}, "fleet",
                                              record.get("rollout", ""), command, state=record["state"],
                                              since=float(record.get("at") or time.time()),
                                              reason=record.get("reason", ""))

    def cancel(self, name: str, reason: str = "cancelled", quiet: bool = False) -> bool:
        with self._lock:
            cand = self.candidates.get(name)
            if cand is not None and cand.state == "promoted" and reason.startswith("replaced"):
                self._keep(cand, "the watch ended early: a new candidate replaces it")  # it is the live model
                return False
            if cand is None or cand.state not in ("shadow", "decided", "downloading"):
                return False
            self._end_shadow(cand)
            cand.state, cand.reason = "cancelled", reason
        if not quiet:
            log_event(log, logging.INFO, "model_candidate_cancelled", model=name, reason=reason)
        self._changed(cand)
        return True

    def _end_shadow(self, cand: Candidate) -> None:
        if cand.runner is not None:
            cand.runner.close()
        if cand.model is not None:
            cand.model.close()
            cand.model = None

    # -- the live side (never blocks) ---------------------------------------------------------------
    def on_frame(self, image: np.ndarray, index: int, results: list[Any], labels: FrameLabels | None,
                 sample_id: str | None) -> None:
        """Every processed frame of the sampled stream: offered to each shadow; scored for each watch."""
        for cand in list(self.candidates.values()):
            current = next((r for r in results if r.name == cand.name), None)
            if current is None:
                continue
            if cand.state == "shadow" and cand.runner is not None:
                cand.runner.offer(Job(image, index, current, labels, sample_id))
            elif cand.state == "promoted" and cand.watch is not None and labels is not None:
                cand.watch.add(current, labels)

    def on_labels(self, sample_id: str, results: list[Any], labels: FrameLabels) -> None:
        """A sample labelled later (the review page, the inbox): the candidate's saved prediction of that
        frame and the live model's are scored against the same labels."""
        for cand in list(self.candidates.values()):
            current = next((r for r in results if r.name == cand.name), None)
            if current is None:
                continue
            if cand.state == "promoted" and cand.watch is not None:
                cand.watch.add(current, labels)
                continue
            if cand.state != "shadow" or cand.score is None or sample_id in cand.scored_samples:
                continue
            saved = load_prediction(self.samples_dir, sample_id, cand.name) if self.samples_dir else None
            if saved is None:
                cand.score.unpaired += 1
                continue
            if cand.score.add(current, saved, labels):
                cand.scored_samples.add(sample_id)

    def _shadow_result(self, cand: Candidate, job: Job, result: Any, seconds: float) -> None:
        assert cand.score is not None
        cand.score.record_latency("candidate", seconds)
        if job.sample_id is not None and self.samples_dir is not None:
            save_prediction(self.samples_dir, job.sample_id, cand.name, result)
        if job.labels is not None and cand.score.add(job.current, result, job.labels) and job.sample_id:
            cand.scored_samples.add(job.sample_id)

    # -- decisions, swaps and the watch (the manager's thread) ---------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            for cand in list(self.candidates.values()):
                try:
                    self.step(cand)
                except Exception:  # a bug here must not stop the others (nor the device)
                    log.exception("rollout: %s", cand.name)

    def step(self, cand: Candidate) -> None:
        if cand.state == "shadow" and cand.score is not None and len(cand.score) >= self.rule.frames:
            verdict, numbers = cand.score.decide()
            if verdict is None:
                return
            cand.decision = {"verdict": verdict, **numbers}
            if verdict == "reject":
                self.reject(cand.name, numbers.get("reason", ""))
            elif self.settings.auto_promote:
                self.promote(cand.name)
            else:
                cand.state = "decided"
                self._changed(cand)
        elif cand.state == "promoted":
            self._watch(cand)

    def reject(self, name: str, reason: str) -> None:
        with self._lock:
            cand = self.candidates[name]
            self._end_shadow(cand)
            cand.state, cand.reason = "rejected", reason
        d = cand.decision or {}
        log_event(log, logging.WARNING, "model_rejected", model=name, reason=reason, frames=d.get("frames"))
        self.emit("model_rejected", model=name, artifact=cand.entry["artifact"], sha256=cand.entry["sha256"],
                  frames=int(d.get("frames", 0)), reason=reason, rollout=cand.rollout, numbers=brief(d))
        self._changed(cand)

    def promote(self, name: str) -> None:
        """The candidate becomes the live model: opened with the live settings, swapped in between batches."""
        with self._lock:
            cand = self.candidates.get(name)
            if cand is None or cand.state not in ("shadow", "decided"):
                raise ValueError(f"model {name}: no candidate in shadow to promote")
            try:
                new = self.opener(name, cand.entry, 0)  # 0: the live model's own thread count
            except Exception as exc:
                self._end_shadow(cand)
                cand.state, cand.reason = "failed", f"could not be opened as the live model: {exc}"
                log_event(log, logging.ERROR, "model_promotion_failed", model=name, error=str(exc))
                self._changed(cand)
                return
            frames, errors, seconds = self.stats(name)
            cand.baseline = {"frames": frames, "errors": errors, "seconds": seconds or 0.0}
            cand.previous_entry = self.current_entry(name)
            cand.previous = self.swap(name, new)
            self._end_shadow(cand)
            self.models_state.set(name, {**cand.entry, "previous": cand.previous_entry, "promoted_at": time.time(),
                                         "rollout": cand.rollout})
            d = cand.decision or {}
            interval = d.get("current_interval")
            cand.watch = Watch(new.task, tuple(new.classes), self.cfg.rolling.iou,
                               interval[0] if interval else None, self.settings.watch_frames,
                               cand.score.gap_s() if cand.score is not None else 0.0)
            cand.state, cand.promoted_at = "promoted", time.monotonic()
            cand.reason = d.get("reason", "promoted by hand")
        log_event(log, logging.INFO, "model_promoted", model=name, artifact=cand.entry["artifact"], reason=cand.reason)
        self.emit("model_promoted", model=name, artifact=cand.entry["artifact"], sha256=cand.entry["sha256"],
                  frames=int(d.get("frames", 0)), delta=float(d.get("delta") or 0.0), rollout=cand.rollout,
                  numbers=brief(d))
        self._changed(cand)

    def _watch(self, cand: Candidate) -> None:
        frames, errors, seconds = self.stats(cand.name)
        new_frames = frames - cand.baseline.get("frames", 0)
        new_errors = errors - cand.baseline.get("errors", 0)
        s = self.settings
        reason = ""
        if new_frames >= 10 and new_errors / new_frames > s.max_error_rate:
            reason = f"health: errors on {new_errors} of {new_frames} frames (> {s.max_error_rate:.0%})"
        elif (new_frames >= 20 and seconds and cand.baseline.get("seconds")
              and seconds > s.max_latency_ratio * cand.baseline["seconds"]):
            reason = (f"health: latency {seconds * 1000:.1f} ms per frame, > {s.max_latency_ratio} x the previous "
                      f"model's {cand.baseline['seconds'] * 1000:.1f} ms")
        elif self.failing():
            reason = f"health: {self.failing()}"
        elif cand.watch is not None and cand.watch.verdict() == "below":
            reason = (f"live {cand.watch.value()} over {len(cand.watch)} labelled frames is below the previous "
                      f"model's interval (lower bound {cand.watch.floor})")
        if reason:
            self.rollback(cand.name, reason)
            return
        watched = time.monotonic() - cand.promoted_at >= s.watch_s
        labelled = cand.watch is None or s.watch_frames == 0 or cand.watch.verdict() == "kept"
        if watched and labelled:
            self._keep(cand, "the watch passed")

    def _keep(self, cand: Candidate, reason: str) -> None:
        cand.state, cand.reason = "kept", reason
        if cand.previous is not None:
            cand.previous.close()
            cand.previous = None
        log_event(log, logging.INFO, "model_kept", model=cand.name, reason=reason)
        self._changed(cand)

    def rollback(self, name: str, reason: str) -> None:
        """Back to the previous model (still open), its artifact and thresholds."""
        with self._lock:
            cand = self.candidates.get(name)
            if cand is None or cand.state not in ("promoted", "kept"):
                raise ValueError(f"model {name}: nothing promoted to roll back")
            previous = cand.previous
            if previous is None and cand.previous_entry:
                previous = self.opener(name, cand.previous_entry, 0)
            failed = self.swap(name, previous)
            failed.close()
            cand.previous = None
            prev = cand.previous_entry or {}
            was_promoted = prev.get("artifact") and prev.get("artifact") != self.current_config_artifact(name)
            self.models_state.set(name, prev if was_promoted else None)
            cand.state, cand.reason = "rolled_back", reason
        log_event(log, logging.WARNING, "model_rolled_back", model=name, reason=reason)
        self.emit("model_rolled_back", model=name, artifact=cand.entry["artifact"], sha256=cand.entry["sha256"],
                  reason=reason, rollout=cand.rollout)
        self._changed(cand)

    def current_config_artifact(self, name: str) -> str:
        m = self.cfg.models[name]
        return str(self.cfg.resolve(m.artifact)) if m.artifact else ""

    def _changed(self, cand: Candidate) -> None:
        if self.on_change is not None:
            try:
                self.on_change(cand)
            except Exception as exc:
                log.warning("rollout: reporting %s: %s", cand.name, exc)

    # -- status --------------------------------------------------------------------------------------
    def describe(self, name: str, compact: bool = False) -> dict[str, Any] | None:
        cand = self.candidates.get(name)
        return None if cand is None else describe(cand, self.rule, self.stats(name)[2], compact)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        for cand in self.candidates.values():
            self._end_shadow(cand)
            if cand.previous is not None:
                cand.previous.close()


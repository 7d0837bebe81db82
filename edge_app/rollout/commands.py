"""A fleet's commands to a device, signed and bound to an artifact's digest, checked as strictly as events.

A command (retained on ``<prefix>/<device>/command``, QoS 1: a device that was away gets the newest when
it connects) is a JSON object::

    {"v": 1, "id": "<rollout>-<device>", "rollout": "<rollout>", "device": "cam1", "model": "detector",
     "action": "candidate" | "cancel", "url": "http://fleet:8090", "issued": "<UTC ISO time>",
     "artifact": {"digest": "<sha256 of the manifest>", "manifest": {"model": {"sha256", "size"},
                  "meta": {...}, "thresholds": {...} | null}},
     "alg": "ed25519" | "hmac-sha256", "sig": "<base64>"}

The signature covers every other field in a canonical form (sorted keys, no spaces); the digest binds the
manifest (each file's sha256 and size), so nothing the device downloads can differ from what the fleet
signed. A device accepts only its own name, only the algorithm its config holds a key for (no downgrade
from Ed25519 to a guessed HMAC secret), and never an unsigned command. Refusals are ``CommandError``
with a short ``reason`` (counted, logged) and a text.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from ..core import bounded_json
from ..core.bounded_json import BoundError, Bounds
from ..events.schema import NAME, event_time

CommandError = BoundError
MAX_BYTES = 16 * 2**10
_HEX = re.compile(r"^[0-9a-f]{64}$")
ALGS = ("ed25519", "hmac-sha256")


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in doc.items() if k != "sig"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def have_ed25519() -> bool:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: F401
        return True
    except ImportError:
        return False


class Signer:
    """The fleet's side: ``private_key`` (32 raw bytes, Ed25519) or ``secret`` (HMAC-SHA256)."""

    def __init__(self, private_key: bytes | None = None, secret: str = "") -> None:
        if private_key is not None:
            from cryptography.hazmat.primitives.asymmetric import ed25519
            self._key = ed25519.Ed25519PrivateKey.from_private_bytes(private_key)
            self.alg = "ed25519"
        elif secret:
            self._secret, self.alg = secret.encode(), "hmac-sha256"
        else:
            raise ValueError("a command signer needs an Ed25519 private key or a shared secret")

    @property
    def public_key(self) -> str:
        """base64 of the raw Ed25519 public key ("" for HMAC): what devices put in rollout.fleet_public_key."""
        if self.alg != "ed25519":
            return ""
        from cryptography.hazmat.primitives import serialization
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def sign(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {**doc, "alg": self.alg}
        body = canonical(doc)
        raw = self._key.sign(body) if self.alg == "ed25519" else hmac.new(self._secret, body, hashlib.sha256).digest()
        return {**doc, "sig": base64.b64encode(raw).decode()}


class Verifier:
    """The device's side, from its config: the fleet's public key (base64) or the shared secret."""

    def __init__(self, public_key: str = "", secret: str = "") -> None:
        self.alg = "ed25519" if public_key else "hmac-sha256" if secret else ""
        self._key: Any = None
        if public_key:
            from cryptography.hazmat.primitives.asymmetric import ed25519
            self._key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
        self._secret = secret.encode()

    def verify(self, doc: dict[str, Any]) -> None:
        if not self.alg:
            raise CommandError("no_key", "this device holds no fleet key (rollout.fleet_public_key / fleet_secret): "
                                         "fleet commands are refused")
        sig = doc.get("sig")
        if not isinstance(sig, str) or not sig:
            raise CommandError("unsigned", "command without a signature")
        if doc.get("alg") != self.alg:
            raise CommandError("bad_signature", f"command signed with {str(doc.get('alg'))[:20]!r}: this device "
                                                f"accepts {self.alg} only")
        try:
            raw = base64.b64decode(sig, validate=True)
        except ValueError:
            raise CommandError("bad_signature", "signature: not base64") from None
        body = canonical(doc)
        if self.alg == "ed25519":
            from cryptography.exceptions import InvalidSignature
            try:
                self._key.verify(raw, body)
            except InvalidSignature:
                raise CommandError("bad_signature", "the signature does not verify with the fleet's key") from None
        elif not hmac.compare_digest(raw, hmac.new(self._secret, body, hashlib.sha256).digest()):
            raise CommandError("bad_signature", "the HMAC does not match the shared secret")


def _file(v: Any, where: str) -> None:
    if not (isinstance(v, dict) and isinstance(v.get("sha256"), str) and _HEX.match(v["sha256"])
            and isinstance(v.get("size"), int) and not isinstance(v.get("size"), bool) and 0 < v["size"] <= 2**34):
        raise CommandError("bad_field", f"{where}: expected {{\"sha256\": 64 hex digits, \"size\": bytes > 0}}")


def parse_command(payload: bytes, device: str, verifier: Verifier) -> dict[str, Any]:
    """A command for ``device``: bounded JSON, its fields, its identity, the digest, then the signature."""
    doc = bounded_json.loads(payload, MAX_BYTES, Bounds(depth=6, items=64, total_items=256, string=4096), "command")
    if not isinstance(doc, dict):
        raise CommandError("not_object", "command: expected a JSON object")
    for key, ok in (("v", doc.get("v") == 1), ("id", isinstance(doc.get("id"), str) and 0 < len(doc["id"]) <= 160),
                    ("rollout", isinstance(doc.get("rollout"), str) and bool(NAME.match(doc["rollout"]))),
                    ("device", isinstance(doc.get("device"), str)), ("model", isinstance(doc.get("model"), str)
                                                                     and bool(NAME.match(doc["model"]))),
                    ("action", doc.get("action") in ("candidate", "cancel")),
                    ("issued", isinstance(doc.get("issued"), str) and event_time(doc["issued"]) is not None)):
        if not ok:
            raise CommandError("bad_field" if key in doc else "missing", f"command.{key}: missing or malformed")
    if doc["device"] != device:
        raise CommandError("identity", f"command for {doc['device'][:64]!r} on {device!r}'s topic")
    if doc["action"] == "candidate":
        url = doc.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048:
            raise CommandError("bad_field", "command.url: expected the fleet's http(s):// address")
        art = doc.get("artifact")
        if not isinstance(art, dict) or not isinstance(art.get("manifest"), dict):
            raise CommandError("bad_field", "command.artifact: expected {\"digest\", \"manifest\"}")
        man = art["manifest"]
        _file(man.get("model"), "command.artifact.manifest.model")
        _file(man.get("meta"), "command.artifact.manifest.meta")
        if man.get("thresholds") is not None:
            _file(man["thresholds"], "command.artifact.manifest.thresholds")
        if set(man) - {"model", "meta", "thresholds"}:
            raise CommandError("bad_field", "command.artifact.manifest: only model, meta, thresholds")
        if art.get("digest") != manifest_digest(man):
            raise CommandError("digest", "command.artifact.digest is not the sha256 of its manifest")
    verifier.verify(doc)
    return doc

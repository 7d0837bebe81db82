"""An artifact file fetched from the fleet over HTTP(S): resumable, verified, written atomically.

Bytes go to ``<dest>.part``; a download cut off (the fleet stopped, the device killed) resumes from what
is there with ``Range: bytes=N-`` (a fleet that answers 200 instead starts it again). Only when exactly
``size`` bytes are there and their sha256 is the one the signed command named is the file renamed to its
place: a truncated, longer or different download never becomes a file the device could run. A digest that
does not match removes the ``.part`` (resuming it could never succeed); a short one keeps it.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..core.artifact import sha256_file


class DownloadError(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


def fetch(url: str, token: str, dest: Path, sha256: str, size: int, *, timeout: float = 30.0,
          progress: Callable[[int, int], None] | None = None) -> Path:
    """``url`` -> ``dest`` (exactly ``size`` bytes of digest ``sha256``); DownloadError naming the reason."""
    dest = Path(dest)
    if dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == sha256:
        return dest  # there already (a command delivered again): nothing is fetched twice
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > size:
        part.unlink()
        have = 0
    if have < size:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise DownloadError("http", f"{url}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise DownloadError("unreachable", f"{url}: {exc}") from None
        with resp:
            mode = "ab" if resp.status == 206 and have else "wb"
            if mode == "wb":
                have = 0
            with open(part, mode) as fh:
                while True:
                    try:
                        chunk = resp.read(1 << 16)
                    except OSError as exc:  # the connection broke: what came is kept for the next try
                        raise DownloadError("truncated", f"{url}: cut off after {have} of {size} bytes ({exc})") from None
                    if not chunk:
                        break
                    if have + len(chunk) > size:
                        fh.close()
                        part.unlink(missing_ok=True)
                        raise DownloadError("size", f"{url}: more than the {size} bytes the command announced")
                    fh.write(chunk)
                    have += len(chunk)
                    if progress is not None:
                        progress(have, size)
                fh.flush()
                os.fsync(fh.fileno())
    if have != size:
        raise DownloadError("truncated", f"{url}: {have} of {size} bytes arrived; the rest is fetched on the next try")
    actual = sha256_file(part)
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise DownloadError("digest", f"{url}: sha256 {actual[:12]}... is not the command's {sha256[:12]}...: "
                                      "refused, nothing written")
    os.replace(part, dest)
    return dest

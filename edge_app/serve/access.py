"""The token rule of every page we serve, and the security headers of every response.

- Reads (GET): ``Authorization: Bearer TOKEN``, the session cookie, or ``?token=TOKEN`` (for curl and
  Prometheus). A browser that opens a page with ``?token=`` gets the cookie (``HttpOnly``, ``SameSite=
  Strict``) and is sent to the same page without the token in its address, so no script of the page (nor
  one injected into it) can read the token, and it stays out of the history.
- Writes (POST, DELETE): ``Authorization: Bearer TOKEN``, or the cookie *with* an ``X-Requested-With``
  header. A page elsewhere cannot add that header to a cross-site request without a CORS preflight, which
  we never grant: the cookie alone never writes (no CSRF). Never the query string.
- Every response: ``nosniff``, no referrer; HTML: a Content-Security-Policy that runs only our own inline
  scripts (by their SHA-256), loads only from our origin, and forbids framing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from functools import lru_cache
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)
COMMON_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


def cookie_name(port: int) -> str:
    """Cookies are per host, not per port: the device (8080) and the fleet (8090) on one host keep theirs apart."""
    return f"edge_token_{port}"


def _cookie(headers: Any, name: str) -> str:
    raw = headers.get("Cookie", "")
    if not raw:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no token
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def _equal(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def authorised(headers: Any, query: dict[str, list[str]], token: str, *, write: bool = False,
               cookie: str = "") -> bool:
    """Whether a request may proceed (see the module docstring); no token set = open (loopback only: the
    config and the fleet's command line enforce that)."""
    if not token:
        return True
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return _equal(auth[7:], token)
    from_cookie = _cookie(headers, cookie) if cookie else ""
    if from_cookie and (not write or headers.get("X-Requested-With")):
        return _equal(from_cookie, token)
    if not write:
        return _equal(query.get("token", [""])[0], token)
    return False


def session_cookie(name: str, token: str) -> str:
    return f"{name}={token}; Path=/; HttpOnly; SameSite=Strict"


@lru_cache(maxsize=16)
def _page(path: str, mtime: float) -> tuple[bytes, str]:
    body = Path(path).read_bytes()
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in _SCRIPT.findall(body))
    csp = (f"default-src 'self'; script-src {hashes or chr(39) + 'none' + chr(39)}; style-src 'self' 'unsafe-inline'; "
           "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
           "frame-ancestors 'none'; form-action 'self'")
    return body, csp


def page(path: Path) -> tuple[bytes, str]:
    """An HTML page's bytes and its Content-Security-Policy (its inline scripts allowed by hash)."""
    return _page(str(path), Path(path).stat().st_mtime)

"""Is the process working? Thread heartbeats and the source's state judged into ok / degraded / failing
(the systemd watchdog, STATUS=, /healthz and /metrics all read the same judgement)."""
from .watchdog import Health, assess

__all__ = ["Health", "assess"]

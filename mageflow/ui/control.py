"""Who may look at the dashboard and who may steer it.

The rules, in the order they are checked:

1. The app binds a loopback address unless told otherwise, and refuses to
   start on any other address without a token: workflow inputs and outputs
   are data their owners did not mean to publish.
2. With a token, every request must carry it: as ``?token=`` once (the app
   then keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie and drops it
   from the address, as Jupyter does), as that cookie, or as the
   ``X-Mageflow-Token`` header.
3. Controls (pause, resume, stop, retry, remove) are off unless the app is
   started with ``allow_control``, which always makes a token (a random one
   when none is given). A control is a ``POST`` that must carry the token in
   the ``X-Mageflow-Token`` header, which a page of another site can neither
   read nor set without a CORS preflight this app never grants, and must not
   come from another origin (``Origin`` and ``Sec-Fetch-Site`` are checked
   when the browser sends them). A forged cross-site form has neither.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import secrets

from mageflow.errors import DashboardExposedError

TOKEN_COOKIE = "mageflow_token"
TOKEN_HEADER = "x-mageflow-token"
ACTIONS = ("pause", "resume", "stop", "retry", "remove")
"""The controls, as the workflow page names them."""
DESTRUCTIVE = frozenset({"stop", "remove"})
"""The controls the page asks to confirm."""


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Access:
    """The dashboard's security settings, fixed when it starts."""

    token: str | None = None
    """Required on every request when set."""
    allow_control: bool = False

    @classmethod
    def for_host(
        cls, host: str, *, token: str | None = None, allow_control: bool = False
    ) -> Access:
        """The settings for serving on ``host``, or why it may not be served.

        :raises DashboardExposedError: ``host`` is not loopback and no token
            was given.
        """
        if not is_loopback(host) and not token:
            raise DashboardExposedError(
                f"the dashboard refuses to listen on {host} without a token: "
                "anyone who can reach it would read every workflow's inputs "
                "and outputs. Pass --token (or set MAGEFLOW_UI_TOKEN), or "
                "bind 127.0.0.1 and reach it through an SSH tunnel.",
                host=host,
            )
        if allow_control and not token:
            token = secrets.token_urlsafe(24)
        return cls(token=token or None, allow_control=allow_control)

    def admits(self, presented: str | None) -> bool:
        """Whether a request presenting ``presented`` may be served."""
        if self.token is None:
            return True
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.token.encode()
        )

    def may_control(
        self,
        *,
        header_token: str | None,
        origin: str | None,
        fetch_site: str | None,
        own_origin: str,
    ) -> str | None:
        """Why a control request is refused, or ``None`` when it may act."""
        if not self.allow_control:
            return (
                "controls are off: start the dashboard with --allow-control "
                "to pause, resume, stop, retry or remove from it."
            )
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return f"refused a {fetch_site} request: controls work from this page only."
        if origin is not None and origin != own_origin:
            return (
                f"refused a request from {origin}: controls work from this page only."
            )
        if self.token is None or not self.admits(header_token):
            return (
                "this control needs the dashboard's token in the "
                "X-Mageflow-Token header: open the address the dashboard "
                "printed at start (it ends in ?token=...)."
            )
        return None

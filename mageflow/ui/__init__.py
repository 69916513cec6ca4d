"""``mageflow ui``: a local web dashboard over the Redis the workers use.

Install it with ``pip install mageflow[ui]``. See ``docs/dashboard.md`` for
what it shows, its controls and their safety rules.
"""

from mageflow.ui.app import Controls, address, bind, create_app, serve, server
from mageflow.ui.control import Access

__all__ = ["Access", "Controls", "address", "bind", "create_app", "serve", "server"]

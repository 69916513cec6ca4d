"""Task modules written the way real code is: ``from __future__ import
annotations``, and names imported only under ``if TYPE_CHECKING:``.

Each module defines its tasks inside ``build(client)``, so every test builds
them on its own client and no module holds a client or any other state.
``tests/test_annotation_resolution.py`` runs them.
"""

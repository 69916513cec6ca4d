"""The workflow state machine: signing, progress, lifecycle, container kinds.

Start at :mod:`mageflow.engine.workflows` (the engine a client forwards to);
``docs/architecture.md`` draws the modules and how a run flows through them.
"""

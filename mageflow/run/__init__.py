"""The run path: what a Hatchet worker calls for a mageflow task.

:mod:`~mageflow.run.entry` is the function handed to Hatchet;
:mod:`~mageflow.run.signed` wraps a run that carries a signature;
:mod:`~mageflow.run.call` calls the user's function with its arguments.
"""

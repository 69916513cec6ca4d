"""Every exception mageflow raises, in one place.

Each error says what went wrong *and* what to do about it, because most of
them are raised far from the line the user has to change.
"""

from __future__ import annotations

from hatchet_sdk.exceptions import NonRetryableException


class MageflowError(Exception):
    """Base class of every error mageflow raises on purpose."""


class InjectionError(MageflowError, TypeError):
    """A task's parameters cannot be satisfied.

    Raised by ``@client.task`` / ``@client.durable_task`` while the task is
    decorated, never while it runs: a task that imports cleanly is a task whose
    parameters are all accounted for. The message names the task, the
    parameter and the fix.

    It is a :class:`TypeError` too, because a wrong signature is a type mistake.
    """


class UnresolvedAnnotationError(InjectionError, NonRetryableException):
    """An annotation still names something that does not exist at run time.

    Annotations that cannot be resolved when a task is decorated (a forward
    reference to a class defined later, say) are retried once, at the task's
    first call. If the name is still unknown then, this is raised. It is
    non-retryable: Hatchet retrying the run cannot make the name appear.
    """


class MissingSignatureError(MageflowError, NonRetryableException):
    """A task asks for a ``TaskSignature`` but its run has none.

    That happens when the task was triggered through plain Hatchet
    (``task.run(...)``) rather than through a mageflow signature. It is
    non-retryable, because every retry would be triggered the same way.
    """


class RedisNotConfiguredError(MageflowError, RuntimeError):
    """An operation needs Redis, and mageflow was given none.

    Raised at the first operation that needs Redis, never at import time, so
    code that only defines tasks works without a Redis server.
    """

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


class SignatureNotFoundError(MageflowError, NonRetryableException, LookupError):
    """A signature id names nothing in Redis.

    It was removed, or it expired (see :class:`mageflow.TTLConfig`). A run
    whose signature is gone fails with this and is not retried: retrying
    cannot bring the signature back.
    """


class CorruptSignatureError(MageflowError, NonRetryableException, ValueError):
    """A mageflow key holds something that is not a valid mageflow record.

    Another program wrote to the key, or the data was damaged. mageflow reads
    its records as JSON and validates them; it never executes or imports
    anything from Redis, so a bad record is refused, never run.
    """


class InvalidTransitionError(MageflowError, ValueError):
    """A lifecycle operation does not apply to the signature's status.

    For example resuming a signature that is not paused, or stopping one that
    is already done. The message names the status; ``docs/lifecycle.md`` has
    the table of what is allowed from where.
    """


class InputConflictError(MageflowError, NonRetryableException, ValueError):
    """The message and the bound kwargs give one field two different values.

    mageflow merges a run's message with the signature's bound kwargs and
    refuses to guess which one you meant. Bind the field, or send it, not both.
    """


class UnknownTaskError(MageflowError, LookupError):
    """A task name that no known task has.

    Raised by ``sign`` when the name can be checked (the task was declared
    with this client, or the backend is local and must know every task), and
    by the dispatch when the engine rejects the name.
    """


class SignatureNotBoundError(MageflowError, RuntimeError):
    """A ``TaskSignature`` made by hand was asked to run.

    Only signatures from ``sign`` / ``load_signature`` know which client (and
    so which Redis and which engine) they belong to.
    """


class NoClientError(MageflowError, RuntimeError):
    """A module-level function (``mageflow.sign`` ...) found no client to use.

    Inside a task the running client is used. Elsewhere, call the method on
    your client (``client.sign(...)``), pass a task object that belongs to one,
    or wrap the code in ``with client.use():``.
    """

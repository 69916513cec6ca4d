"""Every exception mageflow raises, in one place.

Each error says what went wrong *and* what to do about it, because most of
them are raised far from the line the user has to change. Errors about a
task or a signature also hold what they are about as attributes
(``signature_id``, ``task_name``, ``status`` ...), so code that handles them
never has to parse the message.
"""

from __future__ import annotations

from typing import Any

from hatchet_sdk.exceptions import NonRetryableException


class MageflowError(Exception):
    """Base class of every error mageflow raises on purpose."""


class SignatureError(MageflowError):
    """An error about one stored signature.

    :ivar signature_id: the signature it is about, when there is one.
    :ivar task_name: the signature's task, when it is known.
    :ivar status: the signature's status at the time, when it matters.
    """

    def __init__(
        self,
        message: str,
        *,
        signature_id: str | None = None,
        task_name: str | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.signature_id = signature_id
        self.task_name = task_name
        self.status = status


class InjectionError(MageflowError, TypeError):
    """A task's parameters cannot be satisfied.

    Raised by ``@client.task`` / ``@client.durable_task`` while the task is
    decorated, never while it runs: a task that imports cleanly is a task whose
    parameters are all accounted for. The message names the task, the
    parameter and the fix.

    It is a :class:`TypeError` too, because a wrong signature is a type mistake.

    :ivar task_name: the task being decorated, when it is known.
    :ivar parameter: the parameter at fault, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        task_name: str | None = None,
        parameter: str | None = None,
    ) -> None:
        super().__init__(message)
        self.task_name = task_name
        self.parameter = parameter


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

    :ivar task_name: the task that was run.
    """

    def __init__(self, message: str, *, task_name: str | None = None) -> None:
        super().__init__(message)
        self.task_name = task_name


class RedisNotConfiguredError(MageflowError, RuntimeError):
    """An operation needs Redis, and mageflow was given none.

    Raised at the first operation that needs Redis, never at import time, so
    code that only defines tasks works without a Redis server.
    """


class SignatureNotFoundError(SignatureError, NonRetryableException, LookupError):
    """A signature id names nothing in Redis.

    It was removed, or it expired (see :class:`mageflow.TTLConfig`). A run
    whose signature is gone fails with this and is not retried: retrying
    cannot bring the signature back.
    """


class CorruptSignatureError(SignatureError, NonRetryableException, ValueError):
    """A mageflow key holds something that is not a valid mageflow record.

    Another program wrote to the key, or the data was damaged. mageflow reads
    its records as JSON and validates them; it never executes or imports
    anything from Redis, so a bad record is refused, never run.

    :ivar key: the Redis key that holds the bad value, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        signature_id: str | None = None,
    ) -> None:
        super().__init__(message, signature_id=signature_id)
        self.key = key


class InvalidTransitionError(SignatureError, ValueError):
    """A lifecycle operation does not apply to the signature's status.

    For example resuming a signature that is not paused, or stopping one that
    is already done. The message names the status; ``docs/lifecycle.md`` has
    the table of what is allowed from where.

    :ivar action: what was asked (``pause``, ``resume``, ``stop``, ``add`` ...).
    """

    def __init__(
        self,
        message: str,
        *,
        signature_id: str | None = None,
        task_name: str | None = None,
        status: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(
            message, signature_id=signature_id, task_name=task_name, status=status
        )
        self.action = action


class InputConflictError(SignatureError, NonRetryableException, ValueError):
    """The message and the bound kwargs give one field two different values.

    mageflow merges a run's message with the signature's bound kwargs and
    refuses to guess which one you meant. Bind the field, or send it, not both.

    :ivar field: the input field given twice.
    """

    def __init__(
        self,
        message: str,
        *,
        signature_id: str | None = None,
        task_name: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, signature_id=signature_id, task_name=task_name)
        self.field = field


class ContinuationError(SignatureError, NonRetryableException):
    """A task returned :class:`mageflow.Continue` and it cannot be done.

    The work was started already or belongs to another workflow, the run
    carries no signature (it was triggered through plain Hatchet), a root
    task tried to continue, or the chain of continuations is deeper than the
    client's ``max_continuations`` (the guard against a task that continues
    with itself for ever). Final: retrying the same run would return the
    same thing.

    :ivar continuation_id: the signature it tried to continue with.
    :ivar depth: how many continuations it already descends from.
    """

    def __init__(
        self,
        message: str,
        *,
        signature_id: str | None = None,
        task_name: str | None = None,
        continuation_id: str | None = None,
        depth: int = 0,
    ) -> None:
        super().__init__(message, signature_id=signature_id, task_name=task_name)
        self.continuation_id = continuation_id
        self.depth = depth


class UnknownTaskError(MageflowError, LookupError):
    """A task name that no known task has.

    Raised by ``sign`` when the name can be checked (the task was declared
    with this client, or the backend is local and must know every task), by
    ``explain`` for a task this client did not declare, and by the dispatch
    when the engine rejects the name.

    :ivar task_name: the name, or the names joined by ``", "`` when a batch
        was refused.
    """

    def __init__(self, message: str, *, task_name: str | None = None) -> None:
        super().__init__(message)
        self.task_name = task_name


class SignatureNotBoundError(SignatureError, RuntimeError):
    """A ``TaskSignature`` made by hand was asked to run.

    Only signatures from ``sign`` / ``load_signature`` know which client (and
    so which Redis and which engine) they belong to.
    """


class SignatureFailedError(SignatureError, NonRetryableException):
    """The signature failed: what waiting for it raises, and what a delivery
    of an already failed signature fails with (it is not run again, so a
    duplicate never turns an old failure into a new success).

    :ivar error: the :class:`mageflow.TaskError` it failed with, when it is
        known (``None`` otherwise).
    """

    def __init__(
        self,
        message: str,
        *,
        signature_id: str | None = None,
        task_name: str | None = None,
        status: str | None = None,
        error: Any = None,
    ) -> None:
        super().__init__(
            message, signature_id=signature_id, task_name=task_name, status=status
        )
        self.error = error


class SignatureCanceledError(SignatureError):
    """Waited for a signature that was stopped (``canceled``) or cut short by
    its container (``interrupted``): it has no result, and never will."""


class WaitTimeoutError(SignatureError, TimeoutError):
    """Waited for a signature that did not end within the timeout.

    The signature goes on; wait again, or for longer.
    """


class SignatureMismatchError(SignatureError, NonRetryableException):
    """A run of one task carried the signature of another (or of a chain or
    swarm): it was refused, and the signature is unchanged."""


class InputValidationError(SignatureError, NonRetryableException, ValueError):
    """An input did not validate against its task's input model.

    Raised by ``sign`` (and ``chain`` / ``swarm``) for a bound kwarg that is
    not a field of the input or has the wrong type: nothing is stored. Raised
    by a start you ask for (``aio_run`` ...) whose message makes the input
    invalid: nothing starts. A start the engine makes (a callback, a chain
    step) whose input is invalid is instead recorded as failed with a
    ``validation`` :class:`~mageflow.TaskError`, so its error callbacks run
    and its chain or swarm goes on.

    :ivar errors: one entry per invalid field (``loc``, ``msg``, ``type``).
    """

    def __init__(
        self,
        message: str,
        *,
        signature_id: str | None = None,
        task_name: str | None = None,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(message, signature_id=signature_id, task_name=task_name)
        self.errors = errors or []


class NoClientError(MageflowError, RuntimeError):
    """A module-level function (``mageflow.sign`` ...) found no client to use.

    Inside a task the running client is used; elsewhere, the only client the
    process has. With none, or with several and none chosen, call the method
    on your client (``client.sign(...)``), pass a task object that belongs to
    one, or wrap the code in ``with client.use():``.

    :ivar clients: a description of each live client, when there were
        several to choose from.
    """

    def __init__(self, message: str, *, clients: list[str] | None = None) -> None:
        super().__init__(message)
        self.clients = clients or []


class ClientConfigError(MageflowError, ValueError):
    """``Mageflow(existing_client, ...)`` was asked for settings the existing
    client cannot share.

    A re-wrapped client shares its tasks, Redis and workflows with the client
    it wraps; only ``param_config`` may differ. For another Redis, TTL or
    backend, wrap a plain ``Hatchet`` client instead.

    :ivar setting: the name of the setting that differs.
    """

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class DashboardExposedError(MageflowError, ValueError):
    """``mageflow ui`` was asked to listen on an address other machines can
    reach, without a token: anyone there would read every workflow's inputs
    and outputs. Pass a token, or bind a loopback address.

    :ivar host: the address it was asked to listen on.
    """

    def __init__(self, message: str, *, host: str = "") -> None:
        super().__init__(message)
        self.host = host


class EmbeddedRedisError(MageflowError):
    """No ``redis-server`` could be found or started for the embedded Redis.

    The message says what was looked for and how to install one.
    """

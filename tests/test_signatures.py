"""Signatures end to end on the local backend and a real Redis.

Runs go through hatchet-sdk's ``aio_mock_run`` (a real ``Context``), the
state through the real Lua scripts; nothing here is faked.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from hatchet_sdk import Context
from pydantic import BaseModel
from roundtrips import RoundTrips

import mageflow
from mageflow import (
    HatchetMageflow,
    ReturnValue,
    SignatureStatus,
    TaskError,
    TaskSignature,
)
from mageflow.dispatch import DISPATCH_ID, SIGNATURE_ID, RunRequest
from mageflow.dispatch.local import LocalDispatcher, RunState
from mageflow.store import keys
from mageflow.store.codec import TASK_FIELDS


class Order(BaseModel):
    item: str
    quantity: int = 1


class Receipt(BaseModel):
    total: float


class Notify(BaseModel):
    receipt: ReturnValue[Receipt]
    channel: str = "mail"


class Plain(BaseModel):
    result: Any = None
    tag: str = ""


class OnError(BaseModel):
    failure: ReturnValue[TaskError]


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


@pytest.fixture
def calls() -> Counter[str]:
    return Counter()


@pytest.fixture
def tasks(local: HatchetMageflow, calls: Counter[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    @local.task(name="price")
    async def price(msg: Order, sig: TaskSignature | None) -> Receipt:
        calls["price"] += 1
        seen["price_sig"] = sig
        return Receipt(total=2.5 * msg.quantity)

    @local.task(name="notify")
    async def notify(msg: Notify) -> dict[str, str]:
        calls["notify"] += 1
        seen["notify"] = msg
        return {"sent": msg.channel}

    @local.task(name="plain")
    async def plain(msg: Plain) -> None:
        calls["plain"] += 1
        seen.setdefault("plain", []).append(msg)

    @local.task(name="flaky", retries=2)
    async def flaky(msg: Order, ctx: Context) -> Receipt:
        calls["flaky"] += 1
        seen.setdefault("flaky_attempts", []).append(ctx.attempt_number)
        raise ValueError(f"out of {msg.item}")

    @local.task(name="on-error")
    async def on_error(msg: OnError) -> None:
        calls["on-error"] += 1
        seen.setdefault("errors", []).append(msg.failure)

    seen["tasks"] = {
        "price": price,
        "notify": notify,
        "plain": plain,
        "flaky": flaky,
        "on_error": on_error,
    }
    return seen


async def status_of(client: HatchetMageflow, signature_id: str) -> SignatureStatus:
    signature = await client.load_signature(signature_id)
    assert signature is not None
    return signature.status


# --- sign and load -------------------------------------------------------------


async def test_sign_stores_a_signature_that_loads_back(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await mageflow.sign(
        tasks["tasks"]["price"], quantity=3, task_identifiers={"order": 7}
    )
    loaded = await mageflow.load_signature(sig.id)
    assert loaded is not None
    assert loaded.task_name == "price"
    assert loaded.kwargs == {"quantity": 3}
    assert loaded.task_identifiers == {"order": 7}
    assert loaded.status is SignatureStatus.PENDING
    assert await mageflow.load_signature("no-such-id") is None


async def test_sign_by_unknown_name_is_an_error_on_the_local_backend(
    local: HatchetMageflow,
) -> None:
    with pytest.raises(mageflow.UnknownTaskError, match="no-such-task"):
        await local.sign("no-such-task")


async def test_sign_outside_any_client_says_how_to_fix_it() -> None:
    with pytest.raises(mageflow.NoClientError, match=r"client\.use\(\)"):
        await mageflow.load_signature("x")


# --- running and callbacks -----------------------------------------------------


async def test_run_injects_the_signature_and_fires_success_callback_with_result(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    notify = await local.sign(tasks["tasks"]["notify"], channel="sms")
    sig = await local.sign(tasks["tasks"]["price"], success=notify, quantity=4)

    result = await sig.aio_run({"item": "tea"})
    await backend(local).drain()

    assert result == Receipt(total=10.0)
    assert tasks["price_sig"].id == sig.id
    assert tasks["notify"].receipt == Receipt(total=10.0)
    assert tasks["notify"].channel == "sms"
    assert calls == Counter({"price": 1, "notify": 1})
    assert await status_of(local, sig.id) is SignatureStatus.DONE
    assert await status_of(local, notify.id) is SignatureStatus.DONE


async def test_result_goes_to_the_default_field_without_return_value(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(
        tasks["tasks"]["price"], success=[tasks["tasks"]["plain"]], quantity=2
    )
    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()
    assert tasks["plain"][0].result == {"total": 5.0}


async def test_plain_hatchet_run_gets_none_for_optional_signature(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    await tasks["tasks"]["price"].aio_mock_run(Order(item="tea"))
    assert tasks["price_sig"] is None


async def test_message_conflicting_with_bound_kwargs_is_refused(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"], quantity=2)
    with pytest.raises(mageflow.InputConflictError, match="quantity"):
        await sig.aio_run_no_wait({"item": "tea", "quantity": 3})
    # an equal value is no conflict
    await sig.aio_run_no_wait({"item": "tea", "quantity": 2})
    await backend(local).drain()
    assert calls["price"] == 1


async def test_final_failure_fires_error_callbacks_once_with_typed_payload(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    on_error = await local.sign(tasks["tasks"]["on_error"])
    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(tasks["tasks"]["flaky"], success=notify, error=on_error)

    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()

    assert tasks["flaky_attempts"] == [1, 2, 3]  # retries=2: three attempts
    assert calls["on-error"] == 1
    assert calls["notify"] == 0
    (failure,) = tasks["errors"]
    assert failure.model_dump(exclude={"traceback"}) == TaskError(
        error_type="ValueError",
        message="out of tea",
        signature_id=sig.id,
        task_name="flaky",
        original_message={"item": "tea", "quantity": 1},
    ).model_dump(exclude={"traceback"})
    assert failure.kind == "exception"
    assert failure.traceback is not None
    assert 'raise ValueError(f"out of {msg.item}")' in failure.traceback
    assert await status_of(local, sig.id) is SignatureStatus.FAILED
    assert await status_of(local, notify.id) is SignatureStatus.PENDING


async def test_required_signature_on_a_plain_run_fails_clearly(
    local: HatchetMageflow,
) -> None:
    @local.task(name="needs-sig")
    async def needs_sig(msg: Order, sig: TaskSignature) -> None:
        return None

    with pytest.raises(mageflow.MissingSignatureError, match=r"TaskSignature \| None"):
        await needs_sig.aio_mock_run(Order(item="x"))


# --- atomicity and idempotency -------------------------------------------------


async def test_hundred_concurrent_activations_exactly_one_wins(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"])
    results = await asyncio.gather(
        *(local.store.activate(sig.id, f"dispatch-{i}", "{}") for i in range(100))
    )
    winners = [r for r in results if r.verdict.value == "run"]
    assert len(winners) == 1
    assert sum(r.verdict.value == "duplicate" for r in results) == 99


async def test_duplicate_delivery_of_a_done_signature_runs_nothing_twice(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(tasks["tasks"]["price"], success=notify)
    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()
    first = backend(local).runs[0]

    # Hatchet redelivers the same run, and a second dispatch arrives too.
    await local.dispatch_backend.trigger(first_request(first))
    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()

    assert calls == Counter({"price": 1, "notify": 1})


def first_request(run: Any) -> Any:
    from mageflow.dispatch import RunRequest

    return RunRequest(run.task_name, run.input, run.metadata)


async def test_worker_dying_before_callbacks_loses_none_and_fires_once(
    local: HatchetMageflow,
    tasks: dict[str, Any],
    calls: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the first dispatch of the callbacks dies mid-way."""
    notify = await local.sign(tasks["tasks"]["notify"])
    plain = await local.sign(tasks["tasks"]["plain"])
    sig = await local.sign(tasks["tasks"]["price"], success=[notify, plain])
    real = LocalDispatcher.trigger_many
    crashed = []

    async def crash_once(self: LocalDispatcher, requests: Any) -> list[str]:
        if not crashed:
            crashed.append(True)
            await real(self, requests[:1])  # one callback got out, then death
            raise ConnectionError("worker died")
        return await real(self, requests)

    monkeypatch.setattr(LocalDispatcher, "trigger_many", crash_once)
    run_id = await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()  # recovery re-sends what the crash lost
    (parent,) = [r for r in backend(local).runs if r.run_id == run_id]
    # The outcome was recorded before the callbacks went out: the run itself
    # succeeded, and the callbacks it owed were a recorded debt.
    assert parent.state is RunState.SUCCEEDED
    assert await status_of(local, sig.id) is SignatureStatus.DONE
    assert calls == Counter({"price": 1, "notify": 1, "plain": 1})
    assert await local.redis.hget(keys.signature(sig.id), "sent") == "1"

    # Hatchet redelivers the run anyway: the function is not run again, and
    # no callback runs twice.
    await local.dispatch_backend.trigger(first_request(parent))
    await backend(local).drain()
    assert calls == Counter({"price": 1, "notify": 1, "plain": 1})


async def test_a_signed_run_and_its_callback_cost_two_round_trips_each(
    local: HatchetMageflow, tasks: dict[str, Any], round_trips: RoundTrips
) -> None:
    on_error = await local.sign(tasks["tasks"]["on_error"])
    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(tasks["tasks"]["price"], success=notify, error=on_error)
    runs = backend(local)
    runs.on_idle = None  # the run and its callback alone, not a recovery pass
    await sig.aio_run({"item": "warm"})  # every script is loaded from here on
    await runs.drain()  # and its callback's run is over
    notify_again = await local.sign(tasks["tasks"]["notify"])
    on_error_again = await local.sign(tasks["tasks"]["on_error"])
    again = await local.sign(
        tasks["tasks"]["price"], success=notify_again, error=on_error_again
    )

    request = RunRequest(
        "price", {"item": "tea"}, {SIGNATURE_ID: again.id, DISPATCH_ID: "one"}
    )
    round_trips.reset()
    await runs.run(request)
    await runs.drain()
    # Per run: ACTIVATE claims it, FINISH records the outcome and, in the
    # same step, owes the callback's start; nothing is left to mark after.
    assert round_trips.commands == Counter({"EVALSHA": 4})
    assert await status_of(local, notify_again.id) is SignatureStatus.DONE
    assert await status_of(local, on_error_again.id) is SignatureStatus.PENDING


# --- TTL -----------------------------------------------------------------------


async def test_every_key_expires_and_done_shortens_it(
    redis_url: str, tasks: dict[str, Any]
) -> None:
    from datetime import timedelta

    client = mageflow.Mageflow(
        redis_client=redis_url,
        backend="local",
        ttl=mageflow.TTLConfig(active=timedelta(hours=5), done=timedelta(minutes=2)),
    )

    @client.task(name="ttl-task")
    async def ttl_task(msg: Order) -> None:
        return None

    sig = await client.sign(ttl_task, success="ttl-task")
    key = keys.signature(sig.id)
    assert 5 * 3600 - 5 < await client.redis.ttl(key) <= 5 * 3600
    (callback_id,) = sig.success_callbacks
    assert await client.redis.ttl(keys.signature(callback_id)) > 3600
    await sig.aio_run({"item": "x"})
    assert 0 < await client.redis.ttl(key) <= 120
    await client.redis.aclose()


def test_ttl_config_refuses_nonsense() -> None:
    from datetime import timedelta

    with pytest.raises(ValueError, match="positive timedelta"):
        mageflow.TTLConfig(done=timedelta(0))


# --- lifecycle -----------------------------------------------------------------


async def test_pause_records_the_delivery_and_resume_runs_exactly_it(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(tasks["tasks"]["price"], success=notify)
    await mageflow.pause(sig.id)
    await sig.aio_run_no_wait({"item": "tea", "quantity": 3})
    await backend(local).drain()
    assert calls["price"] == 0
    assert await status_of(local, sig.id) is SignatureStatus.SUSPENDED

    await mageflow.resume(sig.id)
    await backend(local).drain()
    assert calls == Counter({"price": 1, "notify": 1})
    assert tasks["notify"].receipt == Receipt(total=7.5)
    assert backend(local).runs[-2].input == {"item": "tea", "quantity": 3}


async def test_pause_while_running_holds_callbacks_until_resume(
    local: HatchetMageflow, calls: Counter[str], tasks: dict[str, Any]
) -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    @local.task(name="slow")
    async def slow(msg: Order) -> Receipt:
        started.set()
        await gate.wait()
        return Receipt(total=1.0)

    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(slow, success=notify)
    await sig.aio_run_no_wait({"item": "tea"})
    await asyncio.wait_for(started.wait(), 5)
    await mageflow.pause(sig.id)
    gate.set()
    await backend(local).drain()
    assert calls["notify"] == 0
    assert await status_of(local, sig.id) is SignatureStatus.SUSPENDED

    await mageflow.resume(sig.id)
    await backend(local).drain()
    assert calls["notify"] == 1
    assert await status_of(local, sig.id) is SignatureStatus.DONE


async def test_stop_cancels_and_nothing_runs(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"])
    await mageflow.stop(sig.id)
    await mageflow.stop(sig.id)  # idempotent
    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()
    assert calls["price"] == 0
    assert await status_of(local, sig.id) is SignatureStatus.CANCELED


@pytest.mark.parametrize(
    ("prepare", "action", "message"),
    [
        (None, "resume", "it is pending, not suspended"),
        ("run", "pause", "it is done"),
        ("run", "stop", "it is done"),
        ("run", "resume", "it is done, not suspended"),
        ("stop", "pause", "it is canceled"),
        ("stop", "resume", "it is canceled, not suspended"),
    ],
)
async def test_illegal_transitions_raise_clear_errors(
    local: HatchetMageflow,
    tasks: dict[str, Any],
    prepare: str | None,
    action: str,
    message: str,
) -> None:
    sig = await local.sign(tasks["tasks"]["price"])
    if prepare == "run":
        await sig.aio_run({"item": "tea"})
    elif prepare == "stop":
        await sig.stop()
    with pytest.raises(mageflow.InvalidTransitionError, match=message):
        await getattr(mageflow, action)(sig.id)


async def test_lifecycle_of_a_missing_signature_is_not_found(
    local: HatchetMageflow,
) -> None:
    for action in ("pause", "resume", "stop"):
        with pytest.raises(mageflow.SignatureNotFoundError):
            await getattr(mageflow, action)("nope")


async def test_remove_deletes_the_signature_and_its_callbacks(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    inner = await local.sign(tasks["tasks"]["plain"])
    notify = await local.sign(tasks["tasks"]["notify"], success=inner)
    sig = await local.sign(tasks["tasks"]["price"], success=notify, error="plain")
    assert await mageflow.remove(sig.id) == 4
    for signature_id in (sig.id, notify.id, inner.id, *sig.error_callbacks):
        assert await local.load_signature(signature_id) is None


async def test_run_of_a_removed_signature_fails_without_retrying(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"])
    await sig.remove()
    with pytest.raises(mageflow.SignatureNotFoundError):
        await sig.aio_run_no_wait({"item": "tea"})  # refused before it is sent
    # A delivery that still arrives (sent before the removal) does nothing.
    await local.dispatch_backend.trigger(
        RunRequest("price", {"item": "tea"}, {SIGNATURE_ID: sig.id, DISPATCH_ID: "d"})
    )
    await backend(local).drain()
    (run,) = backend(local).runs
    assert isinstance(run.error, mageflow.SignatureNotFoundError)
    assert run.attempts == 1
    assert calls["price"] == 0


# --- bad data in Redis ---------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda r, k: r.set(k, "gANjYnVpbHRpbnMKZXZhbAou"),  # a pickle, base64
        lambda r, k: r.hset(k, mapping={"status": "pending"}),  # no schema
        lambda r, k: r.hset(
            k,
            mapping={
                "v": "1",
                "kind": "task",
                "task": "price",
                "status": "pending",
                "kwargs": "{not json",
                "ids": "{}",
                "ok": "[]",
                "err": "[]",
                "created": "2026-01-01T00:00:00+00:00",
            },
        ),
    ],
    ids=["string-value", "foreign-hash", "damaged-json"],
)
async def test_corrupt_records_are_refused_and_never_run(
    local: HatchetMageflow, tasks: dict[str, Any], calls: Counter[str], write: Any
) -> None:
    key = keys.signature("bad")
    await write(local.redis, key)
    with pytest.raises(mageflow.CorruptSignatureError):
        await local.load_signature("bad")
    await local.dispatch_backend.trigger(
        first_request(
            type(
                "R",
                (),
                {
                    "task_name": "price",
                    "input": {"item": "tea"},
                    "metadata": {SIGNATURE_ID: "bad", DISPATCH_ID: "d1"},
                },
            )
        )
    )
    await backend(local).drain()
    (run,) = backend(local).runs
    assert isinstance(run.error, mageflow.CorruptSignatureError)
    assert run.attempts == 1
    assert calls["price"] == 0


async def test_duplicate_during_a_paused_run_does_not_run_it_twice(
    local: HatchetMageflow, calls: Counter[str], tasks: dict[str, Any]
) -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    @local.task(name="held")
    async def held(msg: Order) -> Receipt:
        calls["held"] += 1
        started.set()
        await gate.wait()
        return Receipt(total=1.0)

    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(held, success=notify)
    await sig.aio_run_no_wait({"item": "tea"})
    await asyncio.wait_for(started.wait(), 5)
    await mageflow.pause(sig.id)
    await sig.aio_run_no_wait({"item": "tea"})  # a duplicate arrives meanwhile
    await mageflow.resume(sig.id)  # the first run is still going
    gate.set()
    await backend(local).drain()
    assert calls["held"] == 1
    assert calls["notify"] == 1
    assert await status_of(local, sig.id) is SignatureStatus.DONE


async def test_resume_resends_the_delivered_message_without_merging_again(
    local: HatchetMageflow, calls: Counter[str], tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"], quantity="3")  # coerced to 3
    await sig.pause()
    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()
    await sig.resume()
    await backend(local).drain()
    assert calls["price"] == 1
    assert await status_of(local, sig.id) is SignatureStatus.DONE


async def test_aio_run_of_a_stopped_signature_says_it_has_no_result(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"])
    await sig.stop()
    with pytest.raises(mageflow.errors.SignatureCanceledError, match="canceled"):
        await sig.aio_run({"item": "tea"})


async def test_more_concurrent_runs_than_connections_wait_for_one(
    local: HatchetMageflow, calls: Counter[str], tasks: dict[str, Any]
) -> None:
    from mageflow.store.connection import MAX_CONNECTIONS

    sigs = [
        await local.sign(tasks["tasks"]["price"]) for _ in range(3 * MAX_CONNECTIONS)
    ]
    await asyncio.gather(*(s.aio_run_no_wait({"item": "tea"}) for s in sigs))
    await backend(local).drain(timeout=120)
    failed = [r.error for r in backend(local).runs if r.error is not None]
    assert failed == []
    assert calls["price"] == 3 * MAX_CONNECTIONS


async def test_an_output_the_worker_refuses_is_a_failure_not_a_result(
    local: HatchetMageflow, calls: Counter[str], tasks: dict[str, Any]
) -> None:
    @local.task(name="bad-output")
    async def bad_output(msg: Order) -> Any:
        return 42  # not a dict, a model or a dataclass

    on_error = await local.sign(tasks["tasks"]["on_error"])
    notify = await local.sign(tasks["tasks"]["notify"])
    sig = await local.sign(bad_output, success=notify, error=on_error)
    await sig.aio_run_no_wait({"item": "tea"})
    await backend(local).drain()
    assert calls["notify"] == 0
    assert [e.error_type for e in tasks["errors"]] == ["IllegalTaskOutputError"]
    assert await status_of(local, sig.id) is SignatureStatus.FAILED


async def test_a_runs_activation_reads_only_the_signature_not_the_bookkeeping(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["tasks"]["price"], quantity=2)
    big = {"item": "tea", "note": "x" * 10_000}
    activation = await local.store.activate(sig.id, "token-1", json.dumps(big))
    assert activation.signature is not None
    assert activation.signature.kwargs == {"quantity": 2}
    # The 10 KB input it was just given is not sent back, nor the holder.
    assert set(activation.record) <= set(TASK_FIELDS)
    assert "input" not in activation.record
    assert len(json.dumps(activation.record)) < 1_000
    stored = await local.store.load_record(sig.id)
    assert stored is not None
    assert json.loads(stored["input"]) == big  # it is recorded all the same
    assert stored["holder"] == "token-1"

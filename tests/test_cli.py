"""``python -m mageflow inspect``: the tree of a stored workflow, on real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from mageflow import HatchetMageflow, ReturnValue, TaskError
from mageflow.cli import main
from mageflow.dispatch.local import LocalDispatcher
from mageflow.store import keys
from mageflow.testing import offline_token


class Order(BaseModel):
    item: str
    quantity: int = 1


class Receipt(BaseModel):
    total: float


class Notify(BaseModel):
    receipt: ReturnValue[Receipt]
    channel: str = "mail"


class OnError(BaseModel):
    failure: ReturnValue[TaskError]


async def stored_workflow(local: HatchetMageflow) -> str:
    @local.task(name="price")
    async def price(msg: Order) -> Receipt:
        return Receipt(total=2.5 * msg.quantity)

    @local.task(name="notify")
    async def notify(msg: Notify) -> dict[str, str]:
        return {"sent": msg.channel}

    @local.task(name="on-error")
    async def on_error(msg: OnError) -> None:
        return None

    sms = await local.sign(notify, channel="sms")
    sig = await local.sign(price, success=sms, error=on_error, quantity=4)
    await sig.aio_run_no_wait({"item": "tea"})
    assert isinstance(local.dispatch_backend, LocalDispatcher)
    await local.dispatch_backend.drain()
    return sig.id


async def inspect(*argv: str) -> int:
    # main() runs its own event loop, so it runs in a thread here.
    return await asyncio.to_thread(main, ["inspect", *argv])


async def test_inspect_prints_the_tree_with_statuses_kwargs_and_callbacks(
    local: HatchetMageflow, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sig_id = await stored_workflow(local)
    assert await inspect(sig_id, "--redis-url", redis_url) == 0
    lines = capsys.readouterr().out.splitlines()
    # The bound kwargs (not the message it ran with), timing, the result.
    assert lines[0].startswith(f'price [done] {sig_id}  kwargs={{"quantity":4}}')
    assert " took " in lines[0]
    assert lines[0].endswith('result={"total":10.0}')
    assert lines[1].startswith("├── on success: notify [done] ")
    assert 'kwargs={"channel":"sms"}' in lines[1]
    assert 'result={"sent":"sms"}' in lines[1]
    assert lines[2].startswith("└── on error: on-error [pending] ")
    assert len(lines) == 3


async def test_inspect_json_and_redis_url_from_the_environment(
    local: HatchetMageflow,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sig_id = await stored_workflow(local)
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert await inspect(sig_id, "--json") == 0
    tree: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert tree["id"] == sig_id
    assert tree["status"] == "done"
    assert tree["outcome"] == {"total": 10.0}
    assert tree["duration"] >= 0
    assert [(c["role"], c["task_name"], c["status"]) for c in tree["children"]] == [
        ("on success", "notify", "done"),
        ("on error", "on-error", "pending"),
    ]


async def test_unknown_corrupt_and_unreachable_are_clear_errors(
    local: HatchetMageflow, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await inspect("nope", "--redis-url", redis_url) == 1
    assert "no signature nope in this Redis database" in capsys.readouterr().err

    await local.redis.set(keys.signature("text"), "not a hash")
    assert await inspect("text", "--redis-url", redis_url) == 1
    assert "is not a hash, so it is not a mageflow signature" in (
        capsys.readouterr().err
    )

    await local.redis.hset(keys.signature("alien"), mapping={"v": "99", "x": "1"})
    assert await inspect("alien", "--redis-url", redis_url) == 1
    assert "is not a mageflow signature record" in capsys.readouterr().err

    assert await inspect("x", "--redis-url", "redis://127.0.0.1:9/0") == 1
    assert "cannot read Redis at redis://127.0.0.1:9/0" in capsys.readouterr().err


async def test_a_broken_callback_is_shown_not_fatal(
    local: HatchetMageflow, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sig_id = await stored_workflow(local)
    record = await local.store.load_record(sig_id)
    assert record is not None
    (callback_id,) = json.loads(record["ok"])
    await local.redis.delete(keys.signature(callback_id))
    assert await inspect(sig_id, "--redis-url", redis_url, "--no-outcomes") == 0
    out = capsys.readouterr().out
    assert f"├── on success: {callback_id} !! no signature {callback_id}" in out
    assert "result=" not in out


def test_python_dash_m_mageflow_runs_the_cli(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    usage = subprocess.run(
        [sys.executable, "-m", "mageflow", "inspect", "some-id"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2
    assert "set REDIS_URL or pass --redis-url" in usage.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "mageflow", "inspect", "some-id"],
        env={**env, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1, missing.stderr
    assert "no signature some-id" in missing.stderr


def test_recover_runs_one_pass_and_says_what_it_did(
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A token for an engine that is not there: a pass with nothing owed
    # never needs it, and says what it did (nothing).
    monkeypatch.setenv("HATCHET_CLIENT_TOKEN", offline_token())
    assert main(["recover", "--redis-url", redis_url, "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mageflow recover: completed 0, resent 0")


def test_recover_without_an_engine_says_how_to_name_one(
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HATCHET_CLIENT_TOKEN", raising=False)
    assert main(["recover", "--redis-url", redis_url]) == 1
    assert "HATCHET_CLIENT_TOKEN" in capsys.readouterr().err


def test_recover_without_redis_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["recover"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err

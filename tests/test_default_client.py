"""Which client the module-level functions use, and re-wrapping a client.

"The only client" is a property of the whole process, and a test process
holds many clients, so those cases run in a fresh interpreter each. The
re-wrapping cases run here.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from datetime import timedelta

import pytest
from pydantic import BaseModel

import mageflow
from mageflow import AcceptParams, HatchetMageflow
from mageflow.testing import offline_hatchet


def run_script(source: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    script = "import asyncio, gc, mageflow\nREDIS_URL = " + repr(redis_url) + "\n"
    return subprocess.run(
        [sys.executable, "-c", script + textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_only_client_serves_the_module_functions(redis_url: str) -> None:
    done = run_script(
        """
        client = mageflow.Mageflow(redis_client=REDIS_URL, backend="local")

        @client.task(name="double")
        async def double(msg: dict) -> dict:
            return {"x": msg["x"] * 2}

        async def main():
            signature = await mageflow.sign("double", x=21)
            loaded = await mageflow.load_signature(signature.id)
            print(loaded.task_name, (await signature.aio_run())["x"])

        asyncio.run(main())
        """,
        redis_url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["double", "42"]


def test_two_clients_are_named_and_none_is_guessed(redis_url: str) -> None:
    done = run_script(
        """
        first = mageflow.Mageflow(redis_client=REDIS_URL, backend="local")
        second = mageflow.Mageflow(redis_client=REDIS_URL, backend="local")

        @first.task(name="alpha")
        async def alpha(msg: dict) -> None: ...

        @second.task(name="beta")
        async def beta(msg: dict) -> None: ...

        async def main():
            try:
                await mageflow.sign("alpha")
            except mageflow.NoClientError as exc:
                print("REFUSED", len(exc.clients))
                print(exc)
            with second.use():
                print("USED", (await mageflow.sign("beta")).task_name)
            del globals()["first"], globals()["alpha"]
            gc.collect()  # the registry holds clients weakly
            print("ONLY", (await mageflow.sign("beta")).task_name)

        asyncio.run(main())
        """,
        redis_url,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "REFUSED 2"
    assert "alpha" in lines[1]
    assert "beta" in lines[1]
    assert "with client.use():" in lines[1]
    assert lines[2:] == ["USED beta", "ONLY beta"]


def test_no_client_at_all_says_how_to_make_one(redis_url: str) -> None:
    done = run_script(
        """
        async def main():
            try:
                await mageflow.pause("some-id")
            except mageflow.NoClientError as exc:
                print(exc)

        asyncio.run(main())
        """,
        redis_url,
    )
    assert done.returncode == 0, done.stderr
    assert "mageflow.Mageflow(" in done.stdout


def test_the_seed_rebinding_keeps_one_client(redis_url: str) -> None:
    # setup.md wraps the same client three times, then uses the last one.
    done = run_script(
        """
        from hatchet_sdk import Hatchet
        from mageflow import AcceptParams
        from mageflow.testing import offline_hatchet

        hatchet = offline_hatchet()
        hatchet = mageflow.Mageflow(hatchet, redis_client=REDIS_URL, backend="local")

        @hatchet.task(name="early")
        async def early(msg: dict) -> dict:
            return {"x": 1}

        url = REDIS_URL
        hatchet = mageflow.Mageflow(hatchet, url, param_config=AcceptParams.ALL)
        hatchet = mageflow.Mageflow(hatchet, url, param_config=AcceptParams.NO_CTX)
        print(hatchet.explain(early).splitlines()[0])

        async def main():
            print("RAN", (await (await mageflow.sign(early)).aio_run())["x"])

        asyncio.run(main())
        """,
        redis_url,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "early" in lines[0]
    assert lines[1] == "RAN 1"


# --- re-wrapping, in this process -------------------------------------------------


class Msg(BaseModel):
    x: int = 0


def test_a_rewrapped_client_keeps_the_tasks_and_applies_its_new_default(
    redis_url: str,
) -> None:
    first = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)

    @first.task(name="before")
    async def before(msg: Msg) -> None:
        return None

    # The first client's NO_CTX refuses an unannotated `ctx` (next test); the
    # re-wrapped client's CTX_ONLY gives it the context, and the first task
    # stays declared.
    second = mageflow.Mageflow(first, param_config=AcceptParams.CTX_ONLY)

    @second.task(name="after")
    async def after(msg: Msg, ctx) -> None:  # type: ignore[no-untyped-def]
        return None

    assert second.registered_task("before") is not None
    assert first.registered_task("after") is not None
    assert (first.param_config, second.param_config) == (
        AcceptParams.NO_CTX,
        AcceptParams.CTX_ONLY,
    )
    assert "ctx" in second.explain(after)
    assert "before" in second.explain("before")
    assert second.engine is first.engine
    assert second.redis is first.redis


def test_first_client_refuses_the_shape_the_rewrapped_one_accepts(
    redis_url: str,
) -> None:
    first = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)
    with pytest.raises(mageflow.InjectionError):

        @first.task(name="needs-ctx")
        async def needs_ctx(msg: Msg, ctx) -> None:  # type: ignore[no-untyped-def]
            return None


@pytest.mark.parametrize(
    ("setting", "changes"),
    [
        ("redis_client", {"redis_client": "redis://elsewhere:6379/0"}),
        ("ttl", {"ttl": mageflow.TTLConfig(active=timedelta(minutes=1))}),
        ("backend", {"backend": "local"}),
    ],
)
def test_rewrapping_refuses_settings_it_cannot_share(
    redis_url: str, setting: str, changes: dict[str, object]
) -> None:
    first = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)
    with pytest.raises(mageflow.ClientConfigError) as caught:
        mageflow.Mageflow(first, **changes)  # type: ignore[arg-type]
    assert caught.value.setting == setting


def test_rewrapping_accepts_the_same_settings_again(redis_url: str) -> None:
    first = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)
    again = mageflow.Mageflow(first, redis_client=redis_url, backend="hatchet")
    assert again.engine is first.engine


def test_explain_of_an_unknown_task_says_what_to_do(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(mageflow.UnknownTaskError) as caught:
        client.explain("never-declared")
    assert caught.value.task_name == "never-declared"
    assert "Declare it" in str(caught.value)


def test_the_registry_does_not_keep_a_client_alive(redis_url: str) -> None:
    client = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)
    ref = weakref.ref(client)
    del client
    gc.collect()
    assert ref() is None

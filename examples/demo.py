"""mageflow end to end, in-process: a chain whose middle step is a swarm.

    ./scripts/demo            (or: python examples/demo.py)
    ./scripts/demo --ui       then keep it open in the dashboard

An order is checked, its lines are priced in parallel by a swarm (at most
three at a time), and the priced lines are summed into an invoice. On the
way it shows:

* injection by annotation (a task asks for ``Context`` and its own
  ``TaskSignature`` by type);
* ``ReturnValue[...]``: each step declares which field receives the result
  of the step before it;
* a success callback and an error callback;
* pause and resume: the chain is paused before it runs, the delivery is
  recorded, and resume runs exactly that delivery;
* a progress bar while the swarm runs, then the stored tree of the whole
  workflow with each node's status, timing and result.

It runs on the local backend (for development and tests; production runs on
Hatchet) against a real Redis: ``REDIS_URL`` if set, else a private
``redis-server`` started for the demo and stopped at the end.

With ``--ui`` (needs ``pip install mageflow[ui]``, which ``./scripts/demo
--ui`` installs) the demo then serves the dashboard on 127.0.0.1 (``--port``,
8765 by default) with its controls on, prints the address of the workflow's
page, and runs until Ctrl-C. Try retry on the failed order it adds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

from hatchet_sdk import Context
from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue, SwarmSignature, TaskError, TaskSignature
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis
from mageflow.tree import build_tree

PRICES = {"tea": 2.5, "cake": 4.0, "scone": 3.0, "jam": 1.75, "milk": 0.9}


class Order(BaseModel):
    order_id: str
    lines: dict[str, int]


class Checked(BaseModel):
    order_id: str
    lines: dict[str, int]
    checked_by: str


class Line(BaseModel):
    item: str
    quantity: int


class Priced(BaseModel):
    item: str
    amount: float


class Totals(BaseModel):
    priced: ReturnValue[list[Priced]]  # the swarm's results, in line order


class Invoice(BaseModel):
    total: float
    lines: int


class Done(BaseModel):
    invoice: ReturnValue[Invoice]


class Failed(BaseModel):
    failure: ReturnValue[TaskError]


def build(client: mageflow.HatchetMageflow, rng: random.Random) -> None:
    """Declare the demo's tasks on ``client``."""

    @client.task(name="check-order")
    async def check_order(msg: Order, ctx: Context, me: TaskSignature) -> Checked:
        # Context and TaskSignature arrive because of their annotations.
        ctx.log(f"checking {msg.order_id}")
        return Checked(order_id=msg.order_id, lines=msg.lines, checked_by=me.id[:8])

    @client.task(name="price-line")
    async def price_line(msg: Line) -> Priced:
        await asyncio.sleep(rng.uniform(0.05, 0.25))  # some work
        return Priced(item=msg.item, amount=PRICES[msg.item] * msg.quantity)

    @client.task(name="sum-invoice")
    async def sum_invoice(msg: Totals) -> Invoice:
        return Invoice(
            total=round(sum(p.amount for p in msg.priced), 2), lines=len(msg.priced)
        )

    @client.task(name="email-invoice")
    async def email_invoice(msg: Done) -> dict[str, str]:
        return {"sent": f"invoice of {msg.invoice.total:.2f}"}

    @client.task(name="page-someone")
    async def page_someone(msg: Failed) -> None:
        print(f"  error callback: {msg.failure.error_type}: {msg.failure.message}")


async def progress(client: mageflow.HatchetMageflow, swarm_id: str) -> None:
    """Draw the swarm's progress from its stored counters until it ends.

    On a terminal the bar redraws in place; elsewhere (a log, a pipe) each
    change is one line.
    """
    in_place = sys.stdout.isatty()
    shown = ""
    while True:
        swarm = await client.load_signature(swarm_id)
        assert isinstance(swarm, SwarmSignature)
        width, size = 30, max(swarm.size, 1)
        filled = width * swarm.finished // size
        bar = "#" * filled + "." * (width - filled)
        text = f"  swarm [{bar}] {swarm.finished}/{swarm.size} {swarm.status.value}"
        if text != shown:
            sys.stdout.write(f"\r{text:<60}" if in_place else f"{text}\n")
            sys.stdout.flush()
            shown = text
        if swarm.status.is_final:
            if in_place:
                sys.stdout.write("\n")
            return
        await asyncio.sleep(0.05)  # a display refresh rate, nothing waits on it


async def show(client: mageflow.HatchetMageflow, chain_id: str, port: int) -> None:
    """Serve the dashboard over the demo's Redis until interrupted."""
    from mageflow import ui

    # Controls on, so a newcomer can press them; the token keeps other
    # local users' browsers out.
    access = ui.Access.for_host("127.0.0.1", allow_control=True)
    sock = ui.bind("127.0.0.1", port)
    print(f"mageflow ui: {ui.address(sock, access, f'/workflows/{chain_id}')}")
    print("  (the demo's workflow in the dashboard; Ctrl-C to stop)", flush=True)
    await ui.server(client, access).serve(sockets=[sock])


async def failing_order(client: mageflow.HatchetMageflow) -> None:
    """One order with an unknown item: its pricing fails, for the dashboard."""
    runner = client.dispatch_backend
    assert isinstance(runner, LocalDispatcher)
    pricing = await mageflow.swarm(
        [await mageflow.sign("price-line", item="caviar", quantity=1)],
        max_concurrency=1,
        stop_after_n_failures=1,
    )
    await pricing.close()
    chain = await mageflow.chain(
        ["check-order", pricing, "sum-invoice"],
        name="invoice-order",
        error="page-someone",
    )
    await chain.aio_run_no_wait(Order(order_id="B-2", lines={"caviar": 1}))
    await runner.drain(timeout=60)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mageflow's demo")
    parser.add_argument(
        "--ui", action="store_true", help="then open it in the dashboard"
    )
    parser.add_argument("--port", type=int, default=8765, help="the dashboard's port")
    args = parser.parse_args(argv)
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        build(client, random.Random(7))
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)
        lines = {"tea": 4, "cake": 2, "scone": 3, "jam": 1, "milk": 6}
        with client.use():
            pricing = await mageflow.swarm(
                [
                    await mageflow.sign("price-line", item=item, quantity=qty)
                    for item, qty in lines.items()
                ],
                max_concurrency=3,
            )
            await pricing.close()
            chain = await mageflow.chain(
                ["check-order", pricing, "sum-invoice"],
                name="invoice-order",
                success="email-invoice",
                error="page-someone",
            )
            print(f"chain {chain.id}: check-order -> swarm of {len(lines)} -> sum")

            await mageflow.pause(chain.id)
            await chain.aio_run_no_wait(Order(order_id="A-17", lines=lines))
            await runner.drain()
            paused = await client.load_signature(chain.steps[0])
            assert paused is not None
            print(f"  paused: the first step is {paused.status.value}, not run")

            started = time.perf_counter()
            await mageflow.resume(chain.id)
            watcher = asyncio.create_task(progress(client, pricing.id))
            await runner.drain(timeout=60)
            await watcher
            elapsed = time.perf_counter() - started

            tree = await build_tree(client, chain.id)
            print()
            print(tree.render())
            print()
            final = await client.load_signature(chain.id)
            assert final is not None
            print(f"chain {final.status.value} in {elapsed:.2f}s")
            if args.ui:
                await failing_order(client)
                await show(client, chain.id, args.port)
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())

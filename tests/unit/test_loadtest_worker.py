"""A worker's command pipe: long commands arrive whole however the pipe cuts them."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
from multiprocessing import Pipe

import uvloop

from loadtest.worker import Worker


def test_a_long_command_arriving_in_pieces_is_not_taken_for_stop() -> None:
    parent, child = Pipe()
    worker = Worker.__new__(Worker)  # only the pipe side of it
    worker.conn = child
    drain = ("drain", {0: list(range(6000))}, 10.0)  # ~18 KB, as after 6,000 posts
    data = pickle.dumps(drain)

    def write_in_two_pieces() -> None:
        head = len(data).to_bytes(4, "big", signed=True)
        parent._send(head + data[:3000])  # type: ignore[attr-defined]
        time.sleep(0.2)
        parent._send(data[3000:])  # type: ignore[attr-defined]

    async def main() -> tuple[object, ...]:
        worker.commands = asyncio.Queue()
        worker.listen()  # uvloop's add_reader, as in a worker process
        threading.Thread(target=write_in_two_pieces).start()
        try:
            return await asyncio.wait_for(worker.command("drain"), 5)
        finally:
            asyncio.get_running_loop().remove_reader(child.fileno())

    assert uvloop.run(main()) == drain
    parent.close()
    child.close()

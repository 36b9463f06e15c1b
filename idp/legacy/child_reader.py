"""Runs the CPU-bound half of an import (reading, decoding, cleaning) in a second process.

One Python process parses and validates about as fast as PostgreSQL stores, but both halves
then share one core's worth of interpreter; with the reading in a forked child, the parent
only writes batches, and the two run on different cores. Messages are tuples sent through a
bounded queue (at most `depth` waiting), so memory stays flat whatever the file's size.

The child is forked before the import starts its writer thread or writes anything; it uses no
connection, pool or lock the parent holds, and leaves with os._exit (multiprocessing's
default), so nothing the parent holds is flushed or closed twice.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable, Iterator
from queue import Empty

FAILED = "failed"
CRASHED = "crashed"
DONE = "done"


class ReaderCrashed(RuntimeError):
    """The child stopped without finishing (an unexpected error, or it was killed)."""


def run_in_child(produce: Callable[[Callable[[tuple], None]], None], *, depth: int = 2,
                 failure: type[Exception] | tuple = ()) -> Iterator[tuple]:
    """Yield what produce(send) sends from a child process, up to and including its DONE.

    An exception of type `failure` in the child arrives as (FAILED, str(exc)); anything else
    raises ReaderCrashed here with the child's traceback.
    """
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue(maxsize=depth)

    def target():
        try:
            produce(queue.put)
        except failure as exc:
            queue.put((FAILED, str(getattr(exc, "message", exc))))
        except BaseException:  # noqa: BLE001 (reported to the parent, which raises)
            queue.put((CRASHED, traceback.format_exc()))
        queue.close()
        queue.join_thread()

    process = ctx.Process(target=target, name="legacy-import-reader", daemon=True)
    process.start()
    try:
        while True:
            try:
                message = queue.get(timeout=1)
            except Empty:
                if not process.is_alive():
                    raise ReaderCrashed(f"the import's reader process exited ({process.exitcode})") from None
                continue
            if message[0] == CRASHED:
                raise ReaderCrashed("the import's reader process failed:\n" + message[1])
            yield message
            if message[0] in (DONE, FAILED):
                return
    finally:
        if process.is_alive():
            process.terminate()
        process.join(10)
        queue.close()

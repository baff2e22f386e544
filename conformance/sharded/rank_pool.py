"""A pool of N torch.distributed ranks, started once and reused for many jobs.

    with RankPool(2) as pool:                       # gloo on CPU, nccl where CUDA is present
        per_rank = pool.run("package.module:function", payload, timeout_s=60)

`run` sends the same job, function(payload), to every rank and returns what each rank
returned, in rank order. Inside the job the rank is an ordinary member of the default process
group (`torch.distributed.get_rank()`, a DeviceMesh over the world): ranks talk only through
torch.distributed; the pool itself carries jobs and answers, never tensors between ranks.

- A rank whose job raises answers a `RankRaised` (its rank and exception text) in its place:
  a raise is a result the caller judges. Where only some ranks raised, a peer may have been
  left mid-collective, so the world is restarted before the next job.
- A rank that dies, or does not answer within timeout_s, ends the job with `RankPoolError`
  naming the rank; the pool is torn down and started afresh on the next job, so a session
  goes on.

Two ways to get ranks:

1. Spawned (the default): N processes of torch.multiprocessing's spawn context, joined by a
   free local TCP port (`tcp://127.0.0.1:PORT`). The caller is not a rank.
2. Attached, when the process was started by torchrun (RANK, WORLD_SIZE and MASTER_ADDR set):
   the world torchrun made is used; rank 0 is the caller and runs its own share in-process,
   the other ranks serve jobs inside `__enter__` and leave the process when rank 0 leaves the
   `with` block. Jobs travel by `broadcast_object_list` and answers by `gather_object`; a hang
   is bounded only by the process group's timeout, and a rank that dies ends the world (as
   torchrun ends it). Across two machines, one rank each (HOST0 reachable from both):

       # on HOST0; on HOST1 the same command with --node-rank 1
       torchrun --nnodes 2 --nproc-per-node 1 --node-rank 0 \\
           --master-addr HOST0 --master-port 29500 -m conformance.sharded.rank_pool

   (gloo picks the network interface from the host name; GLOO_SOCKET_IFNAME=eth0 names it
   where that resolves to loopback.)

   `python -m conformance.sharded.rank_pool [N]` runs the same trivial jobs on a spawned pool
   and prints the start cost and the round trip of one job.
"""
from __future__ import annotations

import datetime
import importlib
import os
import pickle
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR")
COLLECTIVE_TIMEOUT_S = 300  # a collective left waiting on a vanished peer fails after this
FAILED_GRACE_S = 1.0  # after a failed job, how long a rank may take to leave before it is killed


_GONE, _STALE = object(), object()  # a rank's process ended; a message not the one awaited


class RankPoolError(RuntimeError):
    """A rank died or did not answer: the job has no result. `ranks` names them."""

    def __init__(self, message: str, ranks: tuple[int, ...]):
        super().__init__(message)
        self.ranks = ranks


@dataclass(frozen=True)
class RankRaised:
    """What a rank's job raised, in that rank's place among the results."""

    rank: int
    error: str  # "ValueError: ..." as the rank saw it
    trace: str = ""

    def __str__(self) -> str:
        return f"rank {self.rank} raised {self.error}"


def default_backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() and torch.distributed.is_nccl_available() else "gloo"


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def resolve(job: str | Callable) -> Callable:
    """A job as given: a callable, or its qualified name "package.module:function"
    (or "package.module.function")."""
    if callable(job):
        return job
    module, sep, name = job.partition(":")
    if not sep:
        module, _, name = job.rpartition(".")
    return getattr(importlib.import_module(module), name)


def run_job(rank: int, job: str | Callable, payload: Any) -> Any:
    """One rank's share of a job: its value, or a RankRaised."""
    try:
        return resolve(job)(payload)
    except Exception as exc:  # noqa: BLE001 - the caller judges the raise
        return RankRaised(rank, f"{type(exc).__name__}: {exc}", traceback.format_exc())


class RankPool:
    """N ranks of torch.distributed, reused for every job (see the module's docstring)."""

    def __init__(self, n: int, backend: str | None = None, start_timeout_s: float = 120.0):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"a rank pool needs an int >= 1 ranks, got {n!r}")
        self.n = n
        self.backend = backend
        self.start_timeout_s = start_timeout_s
        self.attached = launched_by_torchrun()
        self.starts = 0  # how many times a world was started (restarts included)
        self.start_seconds = 0.0  # the last start's cost
        self._processes: list = []
        self._connections: list = []
        self._jobs = 0
        self._closed = False

    def __enter__(self) -> "RankPool":
        self.backend = self.backend or default_backend()
        if self.attached:
            from conformance.sharded import torchrun_world

            torchrun_world.join(self)  # returns on rank 0 only
        else:
            self._start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def run(self, job: str | Callable, payload: Any = None, timeout_s: float = 60.0) -> list[Any]:
        """job(payload) on every rank; each rank's value (or RankRaised) in rank order."""
        if self.attached:
            from conformance.sharded import torchrun_world

            return torchrun_world.run(self, job, payload)
        if self._closed:
            raise RuntimeError("the rank pool is closed")
        try:
            message = pickle.dumps((self._jobs + 1, job, payload))
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise TypeError(f"a job goes to the ranks by pickle: give a module-level function or its "
                            f"'package.module:function' name, and a picklable payload ({exc})") from None
        if not self._processes:
            self._start()
        self._jobs += 1
        for connection in self._connections:
            connection.send_bytes(message)
        answers = self._collect(self._jobs, timeout_s)
        raised = [a for a in answers if isinstance(a, RankRaised)]
        if raised and len(raised) < self.n:
            self._stop(grace_s=FAILED_GRACE_S)  # the ranks that went on may wait on the ones that raised
        return answers

    def close(self) -> None:
        self._closed = True
        if self.attached:
            from conformance.sharded import torchrun_world

            torchrun_world.leave(self)
        else:
            self._stop()

    # --- spawned ranks ---------------------------------------------------------------------

    def _start(self) -> None:
        import torch.multiprocessing as mp

        started = time.perf_counter()
        context = mp.get_context("spawn")
        address = f"tcp://127.0.0.1:{_free_port()}"
        for rank in range(self.n):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(rank, self.n, self.backend, address, child),
                                      name=f"rank-{rank}", daemon=True)
            process.start()
            child.close()
            self._processes.append(process)
            self._connections.append(parent)
        self.starts += 1
        self._collect("ready", self.start_timeout_s, what="start")
        self.start_seconds = time.perf_counter() - started

    def _collect(self, expected: Any, timeout_s: float, what: str = "job") -> list[Any]:
        """Every rank's answer to `expected`, or RankPoolError (after tearing the world down)
        naming the ranks that died or did not answer within timeout_s."""
        answers: dict[int, Any] = {}
        deadline = time.monotonic() + timeout_s
        while len(answers) < self.n:
            waiting = {self._connections[r]: r for r in range(self.n) if r not in answers}
            sentinels = {self._processes[r].sentinel: r for r in waiting.values()}
            ready = wait([*waiting, *sentinels], timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                silent = tuple(sorted(waiting.values()))
                self._stop(grace_s=FAILED_GRACE_S)
                raise RankPoolError(f"{_ranks(silent)} did not answer the {what} within {timeout_s:g} s; "
                                    f"the ranks were stopped and start afresh on the next job", silent)
            for handle in ready:
                rank = waiting[handle] if handle in waiting else sentinels[handle]
                if rank in answers:
                    continue
                answer = self._receive(rank, expected)
                if answer is _GONE:
                    self._processes[rank].join(timeout=2.0)  # its pipe may close before it is reaped
                    code = self._processes[rank].exitcode
                    self._stop(grace_s=FAILED_GRACE_S)
                    raise RankPoolError(f"rank {rank} died (exit code {code}) during the {what}; "
                                        f"the ranks were stopped and start afresh on the next job", (rank,))
                if answer is not _STALE:
                    answers[rank] = answer
        return [answers[r] for r in range(self.n)]

    def _receive(self, rank: int, expected: Any) -> Any:
        """The rank's answer if it sent one; _GONE where its process ended without one."""
        connection = self._connections[rank]
        try:
            if connection.poll():
                tag, value = connection.recv()
                return value if tag == expected else _STALE
        except (EOFError, OSError):
            return _GONE
        return _STALE if self._processes[rank].is_alive() else _GONE

    def _stop(self, grace_s: float = 5.0) -> None:
        """Ask every rank to leave; kill those still there after grace_s (busy, or blocked in a
        collective with a rank that is gone: no way to ask them nicely)."""
        for connection in self._connections:
            try:
                connection.send(None)  # a rank waiting for work leaves its loop and the world
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + grace_s
        for process in self._processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for connection in self._connections:
            connection.close()
        self._processes, self._connections = [], []


def _serve(rank: int, n: int, backend: str, address: str, connection) -> None:
    """A spawned rank: join the world, then run jobs until told to stop."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # N ranks share the machine's cores
    if backend == "nccl":
        torch.cuda.set_device(rank % torch.cuda.device_count())
    dist.init_process_group(backend, init_method=address, rank=rank, world_size=n,
                            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    connection.send(("ready", os.getpid()))
    try:
        while (message := connection.recv()) is not None:
            number, job, payload = message
            answer = run_job(rank, job, payload)
            try:
                connection.send((number, answer))
            except Exception as exc:  # noqa: BLE001 - a value that does not pickle
                connection.send((number, RankRaised(rank, f"the answer could not be sent back: "
                                                          f"{type(exc).__name__}: {exc}")))
    except (EOFError, KeyboardInterrupt):
        pass  # the caller went away
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ranks(ranks: tuple[int, ...]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def _trivial(payload: Any) -> tuple[int, Any]:
    import torch
    import torch.distributed as dist

    value = torch.tensor([float(dist.get_rank())])
    dist.all_reduce(value)
    return dist.get_rank(), float(value)


def main(argv: list[str]) -> None:
    """Start a pool, run trivial jobs (an all-reduce), print the costs."""
    n = int(argv[0]) if argv else int(os.environ.get("WORLD_SIZE", 2))
    started = time.perf_counter()
    with RankPool(n) as pool:
        start = time.perf_counter() - started
        trips = []
        for _ in range(20):
            began = time.perf_counter()
            answers = pool.run("conformance.sharded.rank_pool:_trivial", None)
            trips.append(time.perf_counter() - began)
        print(f"{n} {pool.backend} ranks ({'attached' if pool.attached else 'spawned'}): start {start:.3f} s, "
              f"trivial job round trip median {sorted(trips)[len(trips) // 2] * 1e3:.2f} ms "
              f"(first {trips[0] * 1e3:.2f} ms); answers {answers}")


if __name__ == "__main__":
    main(sys.argv[1:])

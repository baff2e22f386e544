"""The suite's sharded checks on the ranks torchrun starts, on one machine or across several.

    # two machines, one rank each (HOST0 reachable from both); on HOST1 the same with --node-rank 1
    torchrun --nnodes 2 --nproc-per-node 1 --node-rank 0 --master-addr HOST0 --master-port 29500 \\
        -m conformance.sharded.torchrun_checks --framework torch-dtensor --results results/torchrun.json

    # the same checks on two local ranks
    torchrun --standalone --nproc-per-node 2 -m conformance.sharded.torchrun_checks --framework torch-dtensor

Rank 0 runs the checks: pytest over the suite's matrix in its own process (no xdist workers:
every check's ranks are the one world), with the arguments given (`--framework`, `--cases`,
`--results`, `-k`, ...; the cases default to cases/sharded.yaml). Every other rank serves the
jobs rank 0 sends and leaves when rank 0 is done. The world has one size and one backend (gloo
where the ranks have no GPU, NCCL where they have): the checks of layouts of another number of
ranks, or on the other device, are not offered there and are counted as skipped.
"""
from __future__ import annotations

import sys
from pathlib import Path

from conformance.sharded import rank_pool, torchrun_world

SUITE = Path(__file__).resolve().parents[1] / "pytest" / "suite" / "test_matrix.py"
CASES = Path(__file__).resolve().parents[2] / "cases" / "sharded.yaml"


def pytest_arguments(argv: list[str]) -> list[str]:
    """What rank 0 hands pytest: the suite, one process, and the cases file unless named."""
    cases = [] if any(a == "--cases" or a.startswith("--cases=") for a in argv) else ["--cases", str(CASES)]
    return [str(SUITE), "-p", "no:xdist", "-p", "no:cacheprovider", *cases, *argv]


def main(argv: list[str]) -> int:
    if not rank_pool.launched_by_torchrun():
        print("conformance.sharded.torchrun_checks runs under torchrun (RANK, WORLD_SIZE and MASTER_ADDR "
              "unset); see its docstring for the command", file=sys.stderr)
        return 2
    import pytest

    world = torchrun_world.world_pool()  # every rank joins here; only rank 0 returns
    try:
        return int(pytest.main(pytest_arguments(argv)))
    finally:
        world.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

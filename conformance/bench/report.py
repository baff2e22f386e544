"""The benchmark summary: pytest-benchmark JSON files -> a markdown ranking and a plot.

    python -m conformance.bench.report results/benchmarks/*.json [-o results/benchmarks.md]
        [--plot results/benchmarks.png]

One table per problem (device, dtype, N x C, forward or forward+backward) ranking every
framework's implementations by median time, with GB/s from the byte model, the fraction of
the copy bandwidth measured in the same process, peak extra memory in multiples of the
logits, compile time and the error against the float64 reference. Then fused against naive
per framework, the reference's own cost, and every skip with its reason. The plot shows GB/s
against the class count, fused solid and naive dashed, with the measured copy bandwidth (and
on the CPU one float32 exp per logit) as the physical limit beside them.

Skip lists are read from <name>.skips.json beside each <name>.json when present.
"""
import argparse
import sys
from pathlib import Path

from conformance.bench.plot import plot
from conformance.bench.records import REFERENCE, ReportError, load
from conformance.bench.tables import header_section, ranking_tables, reference_section, skip_section, speedup_table


def render(benchmarks, skips, machines):
    kernels = [b for b in benchmarks if b.get("framework") != REFERENCE]
    references = [b for b in benchmarks if b.get("framework") == REFERENCE]
    lines = header_section(kernels, machines, references)
    if kernels:
        lines += ["## Ranking per problem", ""] + ranking_tables(kernels)
        lines += speedup_table(kernels)
    lines += reference_section(references, skips)
    lines += skip_section(skips, known={b["framework"] for b in benchmarks})
    return "\n".join(lines).rstrip() + "\n"

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m conformance.bench.report", description=__doc__.split("\n")[0])
    parser.add_argument("json", nargs="+", help="pytest-benchmark --benchmark-json files")
    parser.add_argument("-o", "--output", help="write the markdown here (it is printed as well)")
    parser.add_argument("--plot", help="write the PNG plot here")
    args = parser.parse_args(argv)
    try:
        benchmarks, skips, machines = load(args.json)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render(benchmarks, skips, machines)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"markdown: {args.output}")
    if args.plot and plot(benchmarks, args.plot):
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

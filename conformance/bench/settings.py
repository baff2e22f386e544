"""What a benchmark run covers and how long it times: profiles, sizes, devices, dtypes and
the frameworks asked for, from --bench-* options or the XENT_BENCH_* variables.
"""
import math
import os
import re
from dataclasses import dataclass

REFERENCE = "reference"  # selects the reference's own cost, in a process of its own; not a framework id
CLASS_COUNTS = (2, 10, 1000, 32000, 128256)  # 128256: Llama-3's vocabulary, not a power of two
DEVICES = ("cpu", "cuda")

# Logits elements per problem, per device: N is the power of two nearest to elements / C.
# quick: a few minutes for every framework on a 2-core CPU (inputs stay in the last-level
# cache: the results say so); full: about 1 GiB of float32 logits on the CPU (8192 x 32000,
# 2048 x 128256), 4 GiB on a GPU (8192 x 128256, 32768 x 32000).
PROFILES = {
    "quick": {"cpu": 2**21, "cuda": 2**24},
    "full": {"cpu": 2**28, "cuda": 2**30},
}
# Timed region per benchmark: budget_s of rounds, at least min_rounds, each round at least
# min_round_s long (calls shorter than that are repeated within a round).
TIMING = {
    "quick": {"budget_s": 0.2, "min_rounds": 5, "max_rounds": 50, "min_round_s": 1e-3},
    "full": {"budget_s": 5.0, "min_rounds": 5, "max_rounds": 200, "min_round_s": 1e-3},
}
# Reference cost sweep, the rows of [N, 128256] per profile (float32 logits; float64 for the
# double-double tier, which runs at N <= 64 only).
REFERENCE_ROWS = {"quick": (16, 64), "full": (64, 1024, 8192)}
REFERENCE_CLASSES = 128256


@dataclass(frozen=True)
class Settings:
    profile: str = "quick"
    frameworks: tuple = ()  # empty: every framework this process can run, and the reference
    devices: tuple = DEVICES
    dtypes: tuple = ("float32",)
    sizes: tuple = ()  # explicit (N, C) pairs; empty: the profile's
    classes: tuple = CLASS_COUNTS


def parse_sizes(text):
    """'8192x32000,1024x128256' -> ((8192, 32000), (1024, 128256))."""
    sizes = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        match = re.fullmatch(r"(\d+)\s*[xX*]\s*(\d+)", item)
        if not match:
            raise ValueError(f"size {item!r}: expected NxC, e.g. 8192x32000")
        sizes.append((int(match.group(1)), int(match.group(2))))
    return tuple(sizes)


def split_list(text):
    return tuple(filter(None, (part.strip() for part in (text or "").split(","))))


def settings_from(profile=None, frameworks=None, devices=None, dtypes=None, sizes=None, classes=None):
    """Settings from options, falling back to the XENT_BENCH_* environment variables."""
    env = os.environ
    profile = profile or env.get("XENT_BENCH_PROFILE") or "quick"
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    devices = split_list(devices or env.get("XENT_BENCH_DEVICES")) or DEVICES
    for device in devices:
        if device not in DEVICES:
            raise ValueError(f"device {device!r}: expected cpu or cuda")
    classes = tuple(int(c) for c in split_list(classes or env.get("XENT_BENCH_CLASSES"))) or CLASS_COUNTS
    return Settings(
        profile=profile,
        frameworks=split_list(frameworks or env.get("XENT_BENCH_FRAMEWORK")),
        devices=devices,
        dtypes=split_list(dtypes or env.get("XENT_BENCH_DTYPES")) or ("float32",),
        sizes=parse_sizes(sizes or env.get("XENT_BENCH_SIZES")),
        classes=classes,
    )


def settings_for(config):
    """Settings of a pytest run: its --bench-* options (present when tests/benchmarks/conftest.py
    was an initial conftest), else the XENT_BENCH_* variables."""
    def option(name):
        try:
            return config.getoption(name)
        except ValueError:
            return None

    try:
        return settings_from(*(option("bench_" + k) for k in
                               ("profile", "framework", "devices", "dtypes", "sizes", "classes")))
    except ValueError as exc:
        import pytest

        raise pytest.UsageError(str(exc)) from None


def problem_sizes(settings, device):
    """(N, C) pairs for a device: the explicit sizes, or the profile's one per class count."""
    if settings.sizes:
        return settings.sizes
    elements = PROFILES[settings.profile][device]
    return tuple((2 ** max(0, round(math.log2(elements / c))), c) for c in settings.classes)


def plan_rounds(call_s, profile):
    """(rounds, iterations) for benchmark.pedantic from one timed call."""
    t = TIMING[profile]
    iterations = max(1, math.ceil(t["min_round_s"] / max(call_s, 1e-9)))
    round_s = call_s * iterations
    rounds = int(min(t["max_rounds"], max(t["min_rounds"], t["budget_s"] // max(round_s, 1e-9))))
    return rounds, iterations

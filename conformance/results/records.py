"""Results records and files: JSON-safe numbers, array summaries, reading, merging."""
import json
import math
import numbers
import platform
import sys
from datetime import datetime, timezone

import numpy as np

from conformance.results import merge_processes

SCHEMA = 1
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
FAILING = ("failed", "error", "xpassed")  # an xpassed check is a fixed divergence: the manifest must change


def failing(records):
    return [r for r in records if r["outcome"] in FAILING]
SMALL = 16  # arrays up to this many elements are recorded whole


class ResultsError(Exception):
    pass


def number(value):
    """A float for JSON: NaN and infinities become strings so the file stays valid JSON."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def read_number(value: object) -> float | None:
    """A number as a results file holds it, as a float: the inverse of number(). "nan", "inf"
    and "-inf" (and any other string float() reads) become floats; null, booleans and strings
    that are no number become None, so readers never do arithmetic on a str."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (numbers.Real, str)):  # numbers.Real: NumPy scalars of records still in memory
        try:
            return float(value)
        except ValueError:
            return None
        except OverflowError:  # an int past the float range
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]  # an int here
    return None


def summarize(array, dtype=None, worst_index=None):
    """Shape, dtype, the worst element and its index; the values themselves when small."""
    array = np.asarray(array, np.float64)
    out = {"shape": list(array.shape)}
    if dtype:
        out["dtype"] = dtype
    if array.size:
        index = worst_index if worst_index is not None and len(worst_index) == array.ndim else (0,) * array.ndim
        out["worst"] = number(array[index])
        out["index"] = list(index)
    if array.size <= SMALL:
        out["values"] = [number(v) for v in array.ravel()]
    return out


def environment(adapters_info):
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "frameworks": adapters_info,
    }


def write(path, env, records):
    document = {"schema": SCHEMA, "environment": env, "results": sorted(records, key=lambda r: r["id"])}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, allow_nan=False)
        handle.write("\n")


def read(path):
    """A results document, or ResultsError naming the file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: not a results file of schema {SCHEMA}")
    records = document.get("results")
    if not isinstance(records, list):
        raise ResultsError(f"{path}: key 'results': expected a list")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "id" not in record or record.get("outcome") not in OUTCOMES:
            raise ResultsError(f"{path}: results[{i}]: a record needs an id and an outcome in {', '.join(OUTCOMES)}")
    return document


def merge_environments(environments):
    merged = {"frameworks": {}}
    for env in environments:
        for key, value in env.items():
            if key == "frameworks":
                merged["frameworks"].update(value)
            elif key == "manifest_matched":
                merged[key] = sorted(set(merged.get(key, [])) | set(value))
            else:
                merged.setdefault(key, value)
    return merged


def _lacked_the_device(record):
    return record["outcome"] == "skipped" and record.get("reason") == "no-device"


def merge(documents):
    """One document from several (processes, CI shards, a CPU run and a GPU run).

    A check id present twice is an error, except that a check that ran wins over the same
    check skipped for want of its device (a CPU machine's `cuda` checks, run on a GPU one),
    and that the record of a process that died in two runs is one record naming both.
    """
    chosen, origin = {}, {}
    for name, document in documents:
        for record in document["results"]:
            key = record["id"]
            if key in chosen:
                if _lacked_the_device(record):
                    continue
                if merge_processes.is_process_record(record) and merge_processes.is_process_record(chosen[key]):
                    chosen[key] = merge_processes.join(chosen[key], record)
                    continue
                if not _lacked_the_device(chosen[key]):
                    raise ResultsError(f"check {key!r} is in both {origin[key]} and {name}")
            chosen[key], origin[key] = record, name
    return merge_environments([d["environment"] for _, d in documents]), list(chosen.values())

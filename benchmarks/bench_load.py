"""Load time and resident memory of a full-size v2-shaped motion module (453.2 M parameters, fp16).

    .venv/bin/python benchmarks/bench_load.py [--update]

Writes a random v2 file as fp16 .safetensors and as fp16 .ckpt into a temporary folder, then measures in
a fresh subprocess per case (so no case inherits another's memory): the first load through
`load_motion_module`, and a second load of the same file through one `MotionCache`. The files were just
written, so they are read from the page cache: the times are the loader's own cost, not the disk's.
Prints the figures and writes the "Motion-module loading" section to out/RESULTS.md, or with --update to the
tracked benchmarks/RESULTS.md (other sections kept).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from lib_animlong.motion import synthetic  # noqa: E402
from lib_animlong.motion.loader import MotionCache, load_motion_module  # noqa: E402

import results  # noqa: E402

OUT = os.path.join(ROOT, "out", "RESULTS.md")   # where the figures go unless --update

MIB = 1024 * 1024


def status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def resident_mib() -> float:
    return status_mib("VmRSS")


def peak_mib() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak across exec
    return status_mib("VmHWM")


def measure(path: str, cached: bool) -> dict:
    """Runs inside the subprocess: one load (or two through a cache), with time and memory."""
    before = resident_mib()
    cache = MotionCache()
    start = time.perf_counter()
    loaded = cache.get(path) if cached else load_motion_module(path)
    first = time.perf_counter() - start
    figures = dict(first_s=first, rss_before_mib=before, rss_after_mib=resident_mib(),
                   parameters=loaded.parameters, dtype=str(loaded.file_dtype))
    for parameter in loaded.motion.parameters():  # mapped files page in lazily: read every weight once
        parameter.float().sum()
    figures.update(rss_touched_mib=resident_mib(), peak_mib=peak_mib())
    if cached:
        start = time.perf_counter()
        again = cache.get(path)
        figures.update(cached_s=time.perf_counter() - start, same_object=again is loaded,
                       rss_after_cached_mib=resident_mib())
    return figures


def run_case(path: str, cached: bool) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--measure", path] + (["--cached"] if cached else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def write_files(folder: str) -> dict:
    start = time.perf_counter()
    state = synthetic.random_state_dict(synthetic.sd15_spec("v2"), seed=0, dtype=torch.float16)
    paths = {"safetensors": synthetic.save(state, os.path.join(folder, "mm_sd_v15_v2.safetensors")),
             "ckpt": synthetic.save(state, os.path.join(folder, "mm_sd_v15_v2.ckpt"))}
    print(f"wrote two fp16 v2 files in {time.perf_counter() - start:.1f} s")
    return paths


def main(update: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_load_") as folder:
        paths = write_files(folder)
        rows = []
        for label, path, cached in [("fp16 .safetensors", paths["safetensors"], False),
                                    ("fp16 .ckpt", paths["ckpt"], False),
                                    ("fp16 .safetensors, then again from the MotionCache", paths["safetensors"], True)]:
            figures = run_case(path, cached)
            size = os.path.getsize(path) / MIB
            rows.append((label, size, figures))
            print(label, json.dumps(figures))
    lines = ["Full-size v2-shaped module (453.2 M parameters), random weights, written on the fly; each case in a",
             "fresh subprocess; files in the page cache (loader cost, not disk). Resident memory (RSS) is measured",
             "after the imports (`before`), after the load (`after`), after reading every weight once (`touched`:",
             "both formats are memory-mapped and paged in on first use) and as the process peak (VmHWM).", "",
             "| case | file MiB | load s | RSS before MiB | RSS after MiB | RSS touched MiB | peak RSS MiB |"
             " cached load |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, size, f in rows:
        cached = f"{f['cached_s'] * 1000:.3f} ms (same object: {f['same_object']})" if "cached_s" in f else "-"
        lines.append(f"| {label} | {size:.0f} | {f['first_s']:.2f} | {f['rss_before_mib']:.0f} | "
                     f"{f['rss_after_mib']:.0f} | {f['rss_touched_mib']:.0f} | {f['peak_mib']:.0f} | {cached} |")
    body = "\n".join(lines) + "\n\nRun: `.venv/bin/python benchmarks/bench_load.py` (CPU, shared 2 cores).\n"
    print(body)
    path = results.PATH if update else OUT
    os.makedirs(os.path.dirname(path), exist_ok=True)
    results.write_section("Motion-module loading", body, path=path)
    print(f"wrote the 'Motion-module loading' section of {path}"
          + ("" if update else " (pass --update to write benchmarks/RESULTS.md)"))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        torch.set_num_threads(1)
        print(json.dumps(measure(sys.argv[2], cached="--cached" in sys.argv)))
    else:
        unknown = [a for a in sys.argv[1:] if a != "--update"]
        if unknown:
            sys.exit(f"usage: bench_load.py [--update]; unknown argument {unknown[0]!r}")
        main(update="--update" in sys.argv[1:])

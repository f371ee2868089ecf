"""Programs on slow storage: a copy of the benchmark venv behind a FUSE layer with fixed latency.

    python benchmarks/slowfs.py [--size 274] [--latencies 0.2,2] [--cache off,on] [--runs 5]
                                [--programs ...] [--write FILE]

benchmarks/slowfs.c (built here with gcc against libfuse3: `apt-get install fuse3 libfuse3-dev`)
is a passthrough filesystem that sleeps a fixed time in every request it serves (lookup, getattr,
open, read, readdir, flush, release...). With `--cache off` the kernel caches nothing (entry,
attribute and negative timeouts 0, file pages dropped at each open): every `stat` or `open` goes to
the daemon. With `--cache on` entries and attributes are kept 60 s, file pages and directory
listings are kept, so only the first run after mounting is slow: the other runs measure a warm
cache.

The venv is the one benchmarks/bench_programs.py builds (the real programs, epfinder enabled,
padded to --size distributions), copied once under --workdir; only the venv is on the slow
filesystem: the interpreter, its standard library and the pytest project are not. Before measuring,
the caches are rebuilt through the mount (`python -m epfinder refresh`) and every (program, mode)
pair runs once. Then, for each cache setting and latency, a fresh mount, one warm-up run of each
pair, and --runs interleaved rounds as in bench_programs.py.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_programs as bp  # noqa: E402
from trees import corpus_tree  # noqa: E402

DEFAULT_PROGRAMS = ["python -c pass (floor)", "import importlib.metadata", "+ entry_points(group=)",
                    "version('pytest')", "pytest --co -q", "flake8 --version", "sphinx-build --version",
                    "pip list", "jupyter --version"]
MOUNT_TIMEOUT = 20


def build_daemon(work):
    """Compile slowfs.c into ``work`` (again when the source is newer)."""
    source = HERE / "slowfs.c"
    binary = work / "slowfs-daemon"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True,
                               text=True, check=True).stdout.split()
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(source), *flags], check=True)
    return binary


@contextlib.contextmanager
def mounted(daemon, backing, mountpoint, latency_ms, cache):
    """Mount ``backing`` at ``mountpoint`` through slowfs for the duration of the block."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(mountpoint):
        unmount(mountpoint)
    proc = subprocess.Popen([str(daemon), str(backing), str(mountpoint), str(round(latency_ms * 1000)),
                             "1" if cache else "0", "-f", "-o", "fsname=slowfs,max_threads=16"])
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slowfs did not mount {mountpoint} (exit status {proc.poll()})")
            time.sleep(0.05)
        yield mountpoint
    finally:
        unmount(mountpoint)
        try:
            proc.wait(timeout=MOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unmount(mountpoint):
    for args in (["-u"], ["-uz"]):  # lazily if busy
        proc = subprocess.run(["fusermount3", *args, str(mountpoint)], capture_output=True,
                              timeout=MOUNT_TIMEOUT)
        if proc.returncode == 0 or not os.path.ismount(mountpoint):
            return


def backing_venv(work, size):
    """A copy of bench_programs' venv of ``size`` distributions, to serve through the mount."""
    backing = work / "slowfs" / f"back-{size}"
    stamp = backing / ".bench-copied"
    # Copied again whenever this checkout's epfinder changed: a kept copy once made a whole slow
    # storage table measure the epfinder it was copied with.
    wanted = f"{size} {bp.checkout_fingerprint()}\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return backing
    base = bp.base_venv(work, sys.executable)
    python = bp.sized_venv(work, base, corpus_tree(work / "corpus"), size)
    shutil.rmtree(backing, ignore_errors=True)
    backing.mkdir(parents=True)
    shutil.copytree(Path(python).parents[1], backing / "venv", symlinks=True)
    stamp.write_text(wanted)
    return backing


def prepare(daemon, backing, mountpoint, programs, project):
    """Through a mount without latency: rebuild the caches, run every pair once."""
    with mounted(daemon, backing, mountpoint, 0, cache=False):
        python = mountpoint / "venv" / "bin" / "python"
        bp.run([python, "-m", "epfinder", "refresh"], capture_output=True)
        for program in programs:
            for mode in bp.MODES:
                bp.run_once(python, program, mode, project)


def table(programs, times):
    lines = ["| program | off (plain) | on | on/off |", "|---|---:|---:|---:|"]
    for program in programs:
        off = statistics.median(times[(program, "off")])
        on = statistics.median(times[(program, "on")])
        lines.append(f"| {program} | {bp.fmt_ms(off)} | {bp.fmt_ms(on)} | {bp.paired_ratio(times, program):.2f} |")
    if "import importlib.metadata" in programs and "+ entry_points(group=)" in programs:
        alone = statistics.median(times[("import importlib.metadata", "on")])
        query = statistics.median(times[("+ entry_points(group=)", "on")])
        lines += ["", f"With epfinder on, `import importlib.metadata` + `entry_points(group=)` takes "
                      f"{query / alone:.2f}× the import alone."]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=274, help="distributions in site-packages")
    parser.add_argument("--latencies", default="0.2,2", help="ms per operation, comma-separated")
    parser.add_argument("--cache", default="off,on", help="kernel caching: off, on or off,on")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--programs", default=",".join(DEFAULT_PROGRAMS),
                        help="comma-separated, among: " + "; ".join(bp.PROGRAMS))
    parser.add_argument("--timeout", type=float, default=600, help="seconds for any one run")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "epfinder-bench-programs"),
                        help="shared with bench_programs.py, whose venvs are reused")
    parser.add_argument("--write", help="also write the Markdown to this file")
    args = parser.parse_args(argv)
    programs = [p.strip() for p in args.programs.split(",") if p.strip()]
    for program in programs:
        if program not in bp.PROGRAMS:
            parser.error(f"unknown program {program!r}")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    daemon = build_daemon(work)
    backing = backing_venv(work, args.size)
    mountpoint = work / "slowfs" / "mnt"
    project = bp.pytest_project(work)
    prepare(daemon, backing, mountpoint, programs, project)
    python = mountpoint / "venv" / "bin" / "python"
    lines = [f"{args.size} distributions; the venv on slowfs, the interpreter and its standard "
             f"library on local disk; {args.runs} interleaved rounds after one warm-up run per pair "
             "(medians; on/off: median of the per-round ratios).", ""]
    for cache in args.cache.split(","):
        for latency in [float(x) for x in args.latencies.split(",")]:
            with mounted(daemon, backing, mountpoint, latency, cache == "on"):
                times = bp.wall(python, programs, args.runs, project, timeout=args.timeout)
            block = [f"### {latency:g} ms per operation, kernel caching {cache}", ""] + table(programs, times) + [""]
            print("\n".join(block), flush=True)
            lines += block
    text = "\n".join(lines)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

"""epfinder against its peers, in one run: queries at three sizes, and interpreter start with hooks.

    python3 benchmarks/bench_peers.py [--runs 9] [--sizes 274,1274,5274] [--startup-runs 200]

Writes docs/peers.md (the tables) and docs/peers.png (the chart). It needs matplotlib (when it is
missing, the script makes a venv for itself in the work directory, installs it there, and runs again
inside it); stevedore and the importlib_metadata backport are installed into directories of their
own, so that every flavour's children see the same distributions.

Queries: each cell is the median of N fresh children of a venv made for that size, whose
site-packages holds the corpus (or clones of it), so that epfinder sees an install location as in
a real venv (a tree merely put on sys.path is a watched folder, checked entry by entry). Bytecode
is cached outside the source tree (PYTHONPYCACHEPREFIX). Imports happen before the clock starts;
the clock times the first call. Flavours:

- stdlib, backport: plain importlib.metadata / importlib_metadata;
- stevedore cache: stevedore._cache.get_group_all() (a cache of every group of the whole sys.path,
  keyed by a hash of the interpreter, each path's mtime and every entry_points.txt's mtime);
- epfinder (stdlib), epfinder (backport): the same calls with epfinder enabled;
- epfinder API: epfinder.entry_points() / epfinder.version(), which import no importlib.metadata;
- floor: one stat of each sys.path directory and one read of its epfinder cache file.

Caches (epfinder's, its side files, stevedore's) are built by a warm-up child first. A query a
flavour has no equivalent for is "n/a".

Start-up: `python -c pass` in three venvs with the corpus and three no-op hooks: called from a
hand-written sitecustomize.py (their own cost), through epfinder, through sitecustomize-entrypoints.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = str(ROOT / "src")
sys.path.insert(0, str(HERE))
from trees import corpus_tree, size_venv  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))
from epfinder import _cache  # noqa: E402

GROUP = "console_scripts"
QUERIES = ["entry_points(group=)", "every distribution's entry points", "version()", "packages_distributions()"]
MD = {
    "entry_points(group=)": f"md.entry_points(group={GROUP!r})",
    "every distribution's entry points": "[d.entry_points for d in md.distributions()]",
    "version()": "md.version('pytest')",
    "packages_distributions()": "md.packages_distributions()",
}
FLAVOURS = {
    "stdlib": ("import importlib.metadata as md", "plain", MD),
    "backport": ("import importlib_metadata as md", "backport", MD),
    "stevedore cache": ("from stevedore import _cache", "stevedore",
                        {"entry_points(group=)": f"_cache.get_group_all({GROUP!r})"}),
    "epfinder (stdlib)": ("import epfinder; epfinder.enable(); import importlib.metadata as md", "epfinder", MD),
    "epfinder (backport)": ("import epfinder; epfinder.enable(); import importlib_metadata as md",
                            "epfinder+backport", MD),
    "epfinder API": ("import epfinder, epfinder._app", "epfinder", {
        "entry_points(group=)": f"epfinder.entry_points(group={GROUP!r})",
        "every distribution's entry points": "epfinder.entry_points()",
        "version()": "epfinder.version('pytest')",
    }),
    "floor": ("", "floor", {q: "floor()" for q in QUERIES}),
}

CHILD = """
import os, sys, time
sys.path.extend({extra!r})
{setup}
{floor}
t0 = time.perf_counter()
result = {query}
t1 = time.perf_counter()
print((t1 - t0) * 1e3)
"""

FLOOR = """
def floor():
    for directory in sys.path:
        try:
            os.stat(directory)
            with open(os.path.join(directory, {subdir!r}, {filename!r}), 'rb') as fh:
                fh.read()
        except OSError:
            pass
"""


def ensure_tools(work):
    """Re-run inside a venv with matplotlib, stevedore and the backport, unless this is one."""
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    venv = work / "tools-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "matplotlib"], check=True)
    os.execv(str(python), [str(python), *sys.argv])


def install_backport(work):
    version = "10.2.0" if sys.version_info >= (3, 11) else "9.0.1"
    target = work / f"importlib_metadata-{version}"
    if not target.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", str(target), f"importlib_metadata=={version}"], check=True)
    return str(target), version


_stevedore_dir = None


def install_stevedore(work):
    # Its own directory, so that its children see no other distributions than the others do.
    global _stevedore_dir
    target = work / "stevedore"
    if not target.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", str(target), "stevedore"], check=True)
    _stevedore_dir = str(target)


def extra_paths(kind, backport):
    stevedore_dir = _stevedore_dir
    return {
        "plain": [], "floor": [], "epfinder": [SRC], "backport": [backport],
        "epfinder+backport": [SRC, backport], "stevedore": [stevedore_dir],
    }[kind]


def run_child(python, setup, kind, query, backport, env):
    floor = FLOOR.format(subdir=_cache.SUBDIR, filename=_cache.FILENAME) if kind == "floor" else ""
    code = CHILD.format(extra=extra_paths(kind, backport), setup=setup, floor=floor, query=query)
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"benchmark child failed ({kind}: {query}):\n{proc.stderr}")
    return float(proc.stdout.split()[-1])


def measure_queries(work, sizes, runs, backport):
    corpus = corpus_tree(work / "corpus")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPFINDER") and k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(work / "xdg")  # epfinder's per-user caches and stevedore's, kept apart
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # epfinder's bytecode, as an installed one has it
    results = {}
    for size in sizes:
        python, site = size_venv(work, corpus, size)
        os.makedirs(site / _cache.SUBDIR, exist_ok=True)
        time.sleep(3.2)  # let a freshly made tree settle, so that caches are written
        cells = [(f, q) for f, (_, _, queries) in FLAVOURS.items() for q in QUERIES if q in queries]
        for flavour, query in cells:  # warm-up: bytecode, epfinder caches and side files, stevedore
            setup, kind, queries = FLAVOURS[flavour]
            run_child(python, setup, kind, queries[query], backport, env)
        times = {cell: [] for cell in cells}
        for _ in range(runs):
            random.shuffle(cells)
            for flavour, query in cells:
                setup, kind, queries = FLAVOURS[flavour]
                times[(flavour, query)].append(run_child(python, setup, kind, queries[query], backport, env))
        for cell, values in times.items():
            results[(size, *cell)] = statistics.median(values)
        print(f"size {size} done", file=sys.stderr)
    return results


def measure_startup(work, runs):
    import bench_startup

    bench_startup.VENVS = {k: v for k, v in bench_startup.VENVS.items() if k.startswith("hooks")}
    venvs = bench_startup.build_venvs(work / "startup")
    time.sleep(3.5)
    for python in venvs.values():
        for _ in range(2):
            subprocess.run([python, "-c", "pass"], check=True, env=bench_startup.child_env())
    wall = bench_startup.wall_clock(venvs, runs)
    counted = {name: bench_startup.instructions(python) for name, python in venvs.items()}
    return wall, counted


def write_outputs(results, sizes, runs, startup, startup_runs, backport_version):
    lines = [
        "# epfinder and its peers",
        "",
        f"Generated by `python3 benchmarks/bench_peers.py` (Python {sys.version.split()[0]}; "
        f"importlib_metadata {backport_version}; medians of {runs} fresh interpreters per cell; "
        "first call, the library's import excluded; each flavour's children run a venv whose "
        "site-packages holds the distributions). epfinder (stdlib) and (backport) load epfinder's "
        "query module on their first call, inside the clock, as a program does; the epfinder API "
        "imports it before. \"n/a\": that flavour has no such call.",
        "",
        "![First-call time by flavour](peers.png)",
        "",
    ]
    for size in sizes:
        lines += [f"## {size:,} distributions", "", "| flavour | " + " | ".join(f"`{q}`" for q in QUERIES) + " |",
                  "|---|" + "---:|" * len(QUERIES)]
        for flavour in FLAVOURS:
            row = []
            for query in QUERIES:
                value = results.get((size, flavour, query))
                row.append("n/a" if value is None else f"{value:.2f} ms")
            lines.append(f"| {flavour} | " + " | ".join(row) + " |")
        lines.append("")
    wall, counted = startup
    base = "hooks, called directly"
    lines += ["## Interpreter start with three startup hooks", "",
              f"`python -c pass`, median of {startup_runs} shuffled runs; site-packages holds the 274 corpus "
              "distributions and three no-op hooks.", "",
              "| how the hooks are found | wall clock | vs. called directly | instructions (callgrind) |",
              "|---|---:|---:|---:|"]
    for name in wall:
        ins = counted.get(name)
        lines.append(f"| {name} | {wall[name]:.2f} ms | {wall[name] - wall[base]:+.2f} ms | "
                     f"{'' if ins is None else f'{ins / 1e6:.2f} M'} |")
    (ROOT / "docs" / "peers.md").write_text("\n".join(lines) + "\n", encoding="utf-8")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(QUERIES), figsize=(4.2 * len(QUERIES), 4.2), sharey=False)
    flavours = list(FLAVOURS)
    width = 0.8 / len(flavours)
    for ax, query in zip(axes, QUERIES):
        for i, flavour in enumerate(flavours):
            xs, ys = [], []
            for j, size in enumerate(sizes):
                value = results.get((size, flavour, query))
                if value is not None:
                    xs.append(j + (i - len(flavours) / 2) * width + width / 2)
                    ys.append(value)
            ax.bar(xs, ys, width, label=flavour)
        ax.set_yscale("log")
        ax.set_title(query, fontsize=10)
        ax.set_xticks(range(len(sizes)), [f"{s:,}" for s in sizes])
        ax.set_xlabel("distributions")
        ax.set_ylabel("first call, ms (log)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "peers.png", dpi=90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--sizes", default="274,1274,5274")
    parser.add_argument("--startup-runs", type=int, default=200)
    # Not under /tmp: stevedore switches its cache off for interpreters that live there.
    parser.add_argument("--workdir", default=os.path.expanduser("~/.cache/epfinder-bench-peers"))
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ensure_tools(work)
    backport, backport_version = install_backport(work)
    install_stevedore(work)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = measure_queries(work, sizes, args.runs, backport)
    startup = measure_startup(work, args.startup_runs)
    write_outputs(results, sizes, args.runs, startup, args.startup_runs, backport_version)
    print((ROOT / "docs" / "peers.md").read_text())


if __name__ == "__main__":
    main()

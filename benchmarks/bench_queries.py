"""First-call importlib.metadata queries in fresh interpreters: epfinder against a plain scan.

    python benchmarks/bench_queries.py [--runs 15] [--sizes 274,1274,5274] [--libraries stdlib,backport]
                                       [--backport 10.2.0] [--write docs/benchmarks.md]

Each measurement is one fresh ``python`` child of a venv made for that size (``--without-pip``,
no ``.pth`` file), whose site-packages holds the distributions, so that epfinder sees it as the
install location it is (its ``*.dist-info`` with RECORD are sealed, docs/cache-format.md); its
sys.path is the stdlib plus that site-packages, and epfinder is imported from this checkout; the child times its first query (importlib.metadata, or the
importlib_metadata backport, is imported before the clock starts, in both cases). Plain and epfinder runs alternate, and the table gives
medians and their ratio. The syscall columns count the filesystem calls of one query under strace.
Run it by hand; it is not part of the test suite.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trees import corpus_tree, size_venv  # noqa: E402

SRC = str(HERE.parent / "src")

QUERIES = {
    "entry_points(group=)": "md.entry_points(group='console_scripts')",
    "every dist.entry_points": "[d.entry_points for d in md.distributions()]",
    "version()": "md.version('pytest')",
    "packages_distributions()": "md.packages_distributions()",
}

CHILD = """
import os, sys, time
if {site!r} not in sys.path:
    sys.path.insert(0, {site!r})
sys.path.append({src!r})
sys.path.extend({extra!r})
if {enabled!r}:
    import epfinder
    epfinder.enable()
{library}
{floor}
os.path.exists('/epfinder-bench-begin')  # a marker in the strace output
t0 = time.perf_counter()
result = {query}
t1 = time.perf_counter()
os.path.exists('/epfinder-bench-end')
print((t1 - t0) * 1e3)
"""

# The physical floor: one stat of each sys.path directory and one read of its cache file.
FLOOR = """
def floor():
    for directory, cache in {pairs!r}:
        try:
            os.stat(directory)
            with open(cache, 'rb') as fh:
                fh.read()
        except OSError:
            pass
"""


def floor_pairs(site):
    """(directory, cache file) for each absolute sys.path entry of a benchmark child."""
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); sys.path.append({SRC!r});"
        "import os; from epfinder import _cache;"
        "print(repr([(p, f) for p in sys.path if os.path.isabs(p) for f in _cache.candidate_files(p)"
        " if os.path.exists(f)]))"
    )
    out = subprocess.run([_python, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout)


LIBRARIES = {"stdlib": "import importlib.metadata as md", "backport": "import importlib_metadata as md"}
_backport_dir = None  # where the backport is installed, for the children


def install_backport(work, version):
    global _backport_dir
    target = work / f"importlib_metadata-{version}"
    if not target.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", str(target), f"importlib_metadata=={version}"], check=True)
    _backport_dir = str(target)


_python = sys.executable  # the venv of the size being measured
_pycache = None  # bytecode of epfinder's source tree and the stdlib, kept out of the tree


def run_child(site, enabled, query, mark=False, floor=None, library="stdlib"):
    code = CHILD.format(
        site=str(site), src=SRC, enabled=enabled, query="floor()" if floor else query,
        mark=mark, floor=FLOOR.format(pairs=floor) if floor else "",
        library=LIBRARIES[library], extra=[_backport_dir] if library == "backport" else [],
    )
    # Bytecode is cached (outside the source tree), as an installed epfinder's is: a first query
    # that compiled epfinder's modules would measure the compiler.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "EPFINDER_MODE")}
    env["PYTHONPYCACHEPREFIX"] = _pycache
    cmd = [_python, "-c", code]
    with tempfile.NamedTemporaryFile("r") as trace:
        if mark:
            cmd = ["strace", "-f", "-qq", "-e", "trace=%file,%desc", "-o", trace.name] + cmd
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
        return float(proc.stdout.split()[-1]), trace.read()


def count_syscalls(site, enabled, query, library):
    _, trace = run_child(site, enabled, query, mark=True, library=library)
    inside = False
    counts = {}
    for line in trace.splitlines():
        if "/epfinder-bench-begin" in line:
            inside = True
            continue
        if "/epfinder-bench-end" in line:
            break
        if inside and "(" in line:
            call = line.split("(", 1)[0].split()[-1]
            counts[call] = counts.get(call, 0) + 1
    return counts


def opt_in(site):
    os.makedirs(os.path.join(site, ".epfinder-cache"), exist_ok=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="274,1274,5274")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "epfinder-bench"))
    parser.add_argument("--libraries", default="stdlib,backport")
    parser.add_argument("--backport", default="10.2.0" if sys.version_info >= (3, 11) else "9.0.1",
                        help="the importlib_metadata version to measure")
    parser.add_argument("--write", help="also write the Markdown table to this file")
    args = parser.parse_args(argv)

    global _python, _pycache
    work = Path(args.workdir)
    _pycache = str(work / "pycache")
    libraries = args.libraries.split(",")
    if "backport" in libraries:
        install_backport(work, args.backport)
    corpus = corpus_tree(work / "corpus")
    rows = []
    for size in map(int, args.sizes.split(",")):
        _python, site = size_venv(work, corpus, size)
        opt_in(site)
        run_child(site, True, "None")  # build the caches (scan + write)
        # Directories changed a moment ago are not trusted yet; wait them out once.
        import time

        time.sleep(3.2)
        run_child(site, True, "None")
        for library in libraries:  # packages_distributions() writes one side file per library
            run_child(site, True, "md.packages_distributions()", library=library)
        pairs = floor_pairs(site)
        floor = statistics.median(run_child(site, False, "", floor=pairs)[0] for _ in range(args.runs))
        for library in libraries:
            for label, query in QUERIES.items():
                plain, served = [], []
                for _ in range(args.runs):
                    plain.append(run_child(site, False, query, library=library)[0])
                    served.append(run_child(site, True, query, library=library)[0])
                p, s = statistics.median(plain), statistics.median(served)
                sys_plain = sum(count_syscalls(site, False, query, library).values())
                sys_served = count_syscalls(site, True, query, library)
                rows.append({
                    "size": size, "library": library, "query": label, "plain_ms": p, "epfinder_ms": s,
                    "ratio": p / s, "floor_ms": floor, "syscalls_plain": sys_plain,
                    "syscalls_epfinder": sum(sys_served.values()), "syscalls_detail": sys_served,
                })
                print(json.dumps(rows[-1]), file=sys.stderr)

    table = [
        f"Python {sys.version.split()[0]}, {args.runs} fresh interpreters per cell, medians"
        + (f"; backport: importlib_metadata {args.backport}." if "backport" in libraries else "."),
        "",
        "| dists | library | query | plain | epfinder | speed-up | floor (stat+read) | syscalls plain | syscalls epfinder |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        table.append(
            f"| {r['size']:,} | {r['library']} | `{r['query']}` | {r['plain_ms']:.2f} ms | {r['epfinder_ms']:.2f} ms "
            f"| {r['ratio']:.1f}× | {r['floor_ms']:.2f} ms | {r['syscalls_plain']} "
            f"| {r['syscalls_epfinder']} |"
        )
    text = "\n".join(table) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

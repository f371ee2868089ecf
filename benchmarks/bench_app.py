"""Whole-process cost of asking for plugins: epfinder's application API against importlib.metadata.

    python benchmarks/bench_app.py [--runs 40] [--write FILE]

One venv holding the 274 corpus distributions, with epfinder installed and enabled. Each run is a
whole `python -c ...` process (interpreter start included), in shuffled alternating order:

- `pass`: the interpreter alone;
- `importlib.metadata, plain`: `md.entry_points(group="console_scripts")` with EPFINDER_MODE=off;
- `importlib.metadata, epfinder on`: the same, served from the caches;
- `epfinder.entry_points`: `epfinder.entry_points(group="console_scripts")`, which imports neither
  importlib.metadata nor email nor zipfile.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trees import build_wheel, child_env, corpus_tree, corpus_venv  # noqa: E402

QUERY = "console_scripts"
CASES = {
    "pass": ("pass", {}),
    "importlib.metadata, plain": (f"import importlib.metadata as md; md.entry_points(group={QUERY!r})",
                                  {"EPFINDER_MODE": "off"}),
    "importlib.metadata, epfinder on": (f"import importlib.metadata as md; md.entry_points(group={QUERY!r})", {}),
    "epfinder.entry_points": (f"import epfinder; epfinder.entry_points(group={QUERY!r})", {}),
}


def build(work):
    wheel = build_wheel(work / "wheel")
    python, _site = corpus_venv(work / "venv", corpus_tree(work / "corpus"))
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", str(wheel)], check=True)
    subprocess.run([python, "-m", "epfinder", "install"], check=True, capture_output=True)
    return python


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "epfinder-bench-app"))
    parser.add_argument("--write")
    args = parser.parse_args(argv)
    python = build(Path(args.workdir))
    base = child_env()
    cwd = tempfile.mkdtemp()  # an empty current directory: nothing there for '' on sys.path
    for code, env in CASES.values():  # warm the bytecode caches and the metadata caches
        subprocess.run([python, "-c", code], env={**base, **env}, check=True, cwd=cwd)
    times = {name: [] for name in CASES}
    order = list(CASES.items())
    shuffle = random.Random(0).shuffle
    for _ in range(args.runs):
        shuffle(order)
        for name, (code, env) in order:
            start = time.perf_counter()
            subprocess.run([python, "-c", code], env={**base, **env}, check=True, cwd=cwd)
            times[name].append((time.perf_counter() - start) * 1e3)
    med = {name: statistics.median(t) for name, t in times.items()}
    lines = [
        f"Python {sys.version.split()[0]}, whole `python -c` processes in a venv holding the 274 corpus "
        f"distributions, median of {args.runs} shuffled runs; query: entry_points(group={QUERY!r}).",
        "",
        "| process | wall clock | beyond `pass` |",
        "|---|---:|---:|",
    ]
    for name in CASES:
        lines.append(f"| {name} | {med[name]:.2f} ms | {med[name] - med['pass']:+.2f} ms |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

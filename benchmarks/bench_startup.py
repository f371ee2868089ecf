"""Interpreter start-up cost of epfinder: `python -c pass` in otherwise identical venvs.

    python benchmarks/bench_startup.py [--runs 300] [--write docs/benchmarks-startup.md]

Every venv holds the 274 distributions of the real corpus in site-packages.

Without hooks: one venv without epfinder, one with epfinder installed but not enabled, one enabled
with `python -m epfinder install`; and the last two again beside another `.pth` file holding one
path line, which from 3.13 pays the codec that `site` imports to read any `.pth` file.

With three startup hooks (three small packages, each registering one no-op callable):
- `hooks, called directly`: no epfinder; a sitecustomize.py imports and calls the three callables.
  This is the hooks' own cost, with no discovery at all: the baseline.
- `hooks, epfinder`: epfinder enabled, the hooks registered in the `epfinder.startup` group.
- `hooks, sitecustomize-entrypoints`: the PyPI package of that name, the hooks registered in its
  `sitecustomize` group.

Wall-clock medians come from alternating runs (the machine is noisy, so compare the differences);
where valgrind is installed, callgrind's instruction counts give a repeatable second opinion.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trees import build_wheel, child_env, corpus_tree, corpus_venv  # noqa: E402


HOOKS = 3


def add_hook_packages(site):
    """Three distributions, each registering one no-op callable in both hook groups."""
    for i in range(HOOKS):
        name = f"hookpkg{i}"
        info = Path(site) / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            f"[epfinder.startup]\n{name} = {name}:run\n\n[sitecustomize]\n{name} = {name}:run\n")
        (info / "RECORD").write_text(f"{name}.py,,\n{name}-1.0.dist-info/METADATA,,\n")
        (Path(site) / f"{name}.py").write_text("def run():\n    pass\n")


VENVS = {
    # name: (epfinder installed, enabled, hooks, how hooks are found)
    "without": (False, False, False, None),
    "installed": (True, False, False, None),
    "enabled": (True, True, False, None),
    # Beside another .pth file (setuptools' distutils-precedence.pth, any editable install): from
    # 3.13, reading the first .pth file at all makes site import a codec, which that file pays.
    "another .pth": (False, False, False, "another .pth"),
    "another .pth, enabled": (True, True, False, "another .pth"),
    "hooks, called directly": (False, False, True, "sitecustomize.py"),
    "hooks, epfinder": (True, True, True, None),
    "hooks, sitecustomize-entrypoints": (False, False, True, "sitecustomize-entrypoints"),
}


def build_venvs(work):
    wheel = build_wheel(work / "wheel")
    corpus = corpus_tree(work / "corpus")
    venvs = {}
    for name, (installed, enabled, hooks, finder) in VENVS.items():
        python, site = corpus_venv(work / name.replace(", ", "-").replace(" ", "-"), corpus)
        if hooks:
            add_hook_packages(site)
        if finder == "another .pth":
            Path(site, "another.pth").write_text(str(work / "elsewhere") + "\n")
        if finder == "sitecustomize.py":
            Path(site, "sitecustomize.py").write_text("".join(
                f"import hookpkg{i}; hookpkg{i}.run()\n" for i in range(HOOKS)))
        elif finder == "sitecustomize-entrypoints":
            subprocess.run([python, "-m", "pip", "install", "-q", "sitecustomize-entrypoints==1.1.0"], check=True)
        if installed:
            subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", str(wheel)], check=True)
        if enabled:
            subprocess.run([python, "-m", "epfinder", "install"], check=True, capture_output=True)
        venvs[name] = python
    return venvs


def wall_clock(venvs, runs):
    times = {name: [] for name in venvs}
    env = child_env()
    order = list(venvs.items())
    shuffle = random.Random(0).shuffle
    for _ in range(runs):
        shuffle(order)  # the first start of a round is slower: no venv may always be first
        for name, python in order:
            start = time.perf_counter()
            subprocess.run([python, "-c", "pass"], env=env, check=True)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def instructions(python):
    if not shutil.which("valgrind"):
        return None
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python,
                           "-c", "pass"], capture_output=True, text=True, env=child_env())
    for line in proc.stderr.splitlines():
        if "Collected" in line:
            return int(line.split()[-1])
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "epfinder-bench-startup"))
    parser.add_argument("--write")
    args = parser.parse_args(argv)
    venvs = build_venvs(Path(args.workdir))
    time.sleep(3.5)  # let site-packages settle, so that the first start writes the hook table
    for python in venvs.values():  # warm the page cache and the bytecode caches
        for _ in range(2):
            subprocess.run([python, "-c", "pass"], check=True, env=child_env())
    wall = wall_clock(venvs, args.runs)
    counted = {name: instructions(python) for name, python in venvs.items()}
    lines = [
        f"Python {sys.version.split()[0]}, `python -c pass`, median of {args.runs} alternating runs;"
        " site-packages holds the 274 corpus distributions.",
    ]
    for title, names, base in (
        ("Without startup hooks", ["without", "installed", "enabled"], "without"),
        ("Beside another .pth file", ["another .pth", "another .pth, enabled"], "another .pth"),
        (f"With {HOOKS} startup hooks (no-op callables)",
         ["hooks, called directly", "hooks, epfinder", "hooks, sitecustomize-entrypoints"],
         "hooks, called directly"),
    ):
        lines += ["", f"{title}:", "",
                  f"| venv | wall clock | vs. {base} | instructions (callgrind) | vs. {base} |",
                  "|---|---:|---:|---:|---:|"]
        for name in names:
            ins, ref = counted[name], counted[base]
            lines.append(
                f"| {name} | {wall[name]:.2f} ms | {wall[name] - wall[base]:+.2f} ms "
                f"| {'' if ins is None else f'{ins / 1e6:.2f} M'} "
                f"| {'' if ins is None or ref is None else f'{(ins - ref) / 1e6:+.2f} M ({(ins - ref) / ref:+.1%})'} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

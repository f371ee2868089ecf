"""Interpreter start-up cost of epfinder: `python -c pass` in three otherwise identical venvs.

    python benchmarks/bench_startup.py [--runs 300] [--write docs/benchmarks-startup.md]

The venvs hold the 274 distributions of the real corpus in site-packages: one without epfinder,
one with epfinder installed but not enabled, one enabled with `python -m epfinder install`.
Wall-clock medians come from alternating runs (the machine is noisy, so compare the differences);
where valgrind is installed, callgrind's instruction counts give a repeatable second opinion.
"""

import argparse
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
from trees import corpus_tree  # noqa: E402


def build_venvs(work):
    wheels = work / "wheel"
    if wheels.exists():
        shutil.rmtree(wheels)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(HERE.parent)], check=True)
    (wheel,) = wheels.glob("epfinder-*.whl")
    corpus = corpus_tree(work / "corpus")
    venvs = {}
    for name in ("without", "installed", "enabled"):
        path = work / name
        if path.exists():
            shutil.rmtree(path)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        python = str(path / "bin" / "python")
        site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        for child in os.listdir(corpus):
            if not (Path(site) / child).exists():  # the venv's own pip and setuptools stay
                shutil.copytree(corpus / child, Path(site) / child)
        if name != "without":
            subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", str(wheel)], check=True)
        if name == "enabled":
            subprocess.run([python, "-m", "epfinder", "install"], check=True, capture_output=True)
        venvs[name] = python
    return venvs


def wall_clock(venvs, runs):
    times = {name: [] for name in venvs}
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPFINDER")}
    for _ in range(runs):
        for name, python in venvs.items():
            start = time.perf_counter()
            subprocess.run([python, "-c", "pass"], env=env, check=True)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def instructions(python):
    if not shutil.which("valgrind"):
        return None
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python,
                           "-c", "pass"], capture_output=True, text=True)
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
    for python in venvs.values():  # warm the page cache and the bytecode caches
        subprocess.run([python, "-c", "pass"], check=True)
    wall = wall_clock(venvs, args.runs)
    counted = {name: instructions(python) for name, python in venvs.items()}
    lines = [
        f"Python {sys.version.split()[0]}, `python -c pass`, median of {args.runs} alternating runs;"
        " site-packages holds the 274 corpus distributions.",
        "",
        "| venv | wall clock | vs. without | instructions (callgrind) | vs. without |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in venvs:
        ins = counted[name]
        base = counted["without"]
        lines.append(
            f"| {name} | {wall[name]:.2f} ms | {wall[name] - wall['without']:+.2f} ms "
            f"| {'' if ins is None else f'{ins / 1e6:.2f} M'} "
            f"| {'' if ins is None or base is None else f'{(ins - base) / 1e6:+.2f} M ({(ins - base) / base:+.1%})'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

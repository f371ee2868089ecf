"""Whole programs with epfinder on and off, in a venv holding the real programs.

    python benchmarks/bench_programs.py [--sizes 274,1274,5274] [--runs 9] [--programs ...]
                                        [--callgrind | --no-callgrind] [--write docs/programs.md]

One venv on CPython 3.11 (the interpreter running this script, or --python) with pytest, flake8,
sphinx, jupyter (the full metapackage) and pip installed from the package index, and epfinder
installed from a wheel of this checkout and enabled (`python -m epfinder install`). It is built once
under --workdir and reused.

For each size, a copy of that venv whose site-packages is padded up to that many distributions:
first with corpus distributions (tests/data) whose names are not installed, then with renamed clones
of the corpus (`Foo_c<k>`, as benchmarks/trees.py makes them), so entry-point groups grow as in a
large environment. The groups that the measured programs load at start (pytest11, flake8.extension,
flake8.report) are renamed in the padding (`<group>.padding`): their modules are not installed, and
a plugin that fails to import would stop the program. A size smaller than the real venv is the real
venv itself.

Each program runs as a whole process, with epfinder on and with EPFINDER_MODE=off (the plain
scan), interleaved: each round runs every (program, mode) pair once, in a shuffled order. Reported:
wall-clock medians, the median of the per-round on/off ratios, and (once per cell, under
`valgrind --tool=callgrind` with PYTHONHASHSEED=0) whole-process instruction counts.
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from trees import build_wheel, child_env, corpus_tree  # noqa: E402

REQUIREMENTS = ["pytest", "flake8", "sphinx", "jupyter"]
PADDING_RENAMED_GROUPS = ("pytest11", "flake8.extension", "flake8.report")
TIMEOUT = 1800  # seconds, for any one child process

# name: argv after the venv's python; "{bin}" is the venv's bin directory.
PROGRAMS = {
    "python -c pass (floor)": ["-c", "pass"],
    "version('pytest')": ["-c", "import importlib.metadata as m; m.version('pytest')"],
    "pytest --co -q": ["{bin}/pytest", "--co", "-q", "-p", "no:cacheprovider"],
    "flake8 --version": ["{bin}/flake8", "--version"],
    "sphinx-build --version": ["{bin}/sphinx-build", "--version"],
    "jupyter --version": ["{bin}/jupyter", "--version"],
    "pip list": ["-m", "pip", "list"],
    "import importlib.metadata": ["-c", "import importlib.metadata"],
    "+ entry_points(group=)": ["-c", "import importlib.metadata as m; m.entry_points(group='console_scripts')"],
}
DEFAULT_PROGRAMS = list(PROGRAMS)[:7]

MODES = {"off": {"EPFINDER_MODE": "off"}, "on": {}}


# --- the venvs ---------------------------------------------------------------------------------------


def run(cmd, **kwargs):
    kwargs.setdefault("check", True)
    kwargs.setdefault("timeout", TIMEOUT)
    return subprocess.run([str(c) for c in cmd], **kwargs)


def site_packages(python):
    out = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
              capture_output=True, text=True).stdout
    return Path(out.strip())


def dist_names(site):
    """Normalized names of the distributions in ``site``."""
    names = set()
    for child in os.listdir(site):
        if child.endswith((".dist-info", ".egg-info")):
            names.add(normalize(child.partition("-")[0]))
    return names


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def count_dists(site):
    return sum(child.endswith((".dist-info", ".egg-info")) for child in os.listdir(site))


def base_venv(work, python_exe):
    """The real venv: the programs from the index, epfinder from this checkout, enabled."""
    venv = work / "venv-base"
    stamp = venv / ".bench-built"
    python = venv / "bin" / "python"
    if stamp.exists():
        return current_epfinder(work, python)
    shutil.rmtree(venv, ignore_errors=True)
    run([python_exe, "-m", "venv", venv])
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS])
    stamp.write_text(" ".join(REQUIREMENTS) + "\n")
    return current_epfinder(work, python)


def checkout_fingerprint():
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")) + [ROOT / "pyproject.toml"]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def current_epfinder(work, python, refresh=False):
    """Have ``python``'s venv run this checkout's epfinder, enabled.

    The venvs are built once and kept; without this, a later run measures whatever epfinder was
    installed when they were built (which once made a whole table measure an older reader).
    """
    stamp = Path(python).parents[1] / ".bench-epfinder"
    fingerprint = checkout_fingerprint()
    if stamp.exists() and stamp.read_text().strip() == fingerprint:
        return python
    if fingerprint not in _WHEELS:
        _WHEELS[fingerprint] = build_wheel(work / "wheel")
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--force-reinstall", _WHEELS[fingerprint]])
    run([python, "-m", "epfinder", "install"], capture_output=True)
    if refresh:
        run([python, "-m", "epfinder", "refresh"], capture_output=True)
    stamp.write_text(fingerprint + "\n")
    return python


_WHEELS = {}


def rename_groups(info):
    """In a padding distribution, rename the entry-point groups the programs load at start."""
    eps = info / "entry_points.txt"
    if not eps.exists():
        return
    text = eps.read_text(encoding="utf-8")
    for group in PADDING_RENAMED_GROUPS:
        text = text.replace(f"[{group}]", f"[{group}.padding]")
    eps.write_text(text, encoding="utf-8")


def add_dist(source, target, rename_to=None):
    shutil.copytree(source, target)
    if rename_to:
        meta = target / "METADATA"
        if meta.exists():
            text = meta.read_text(encoding="utf-8")
            text = re.sub(r"^Name: (.*)$", f"Name: {rename_to}", text, count=1, flags=re.M)
            meta.write_text(text, encoding="utf-8")
    rename_groups(target)


def pad(site, corpus, total):
    """Add corpus distributions not installed, then renamed clones, until ``total``."""
    have = count_dists(site)
    installed = dist_names(site)
    originals = sorted(c for c in os.listdir(corpus) if c.endswith((".dist-info", ".egg-info")))
    for child in originals:
        if have >= total:
            return have
        if normalize(child.partition("-")[0]) not in installed and not (site / child).exists():
            add_dist(corpus / child, site / child)
            have += 1
    copy = 0
    while have < total:
        copy += 1
        for child in originals:
            if have >= total:
                break
            name, _, rest = child.partition("-")
            add_dist(corpus / child, site / f"{name}_c{copy}-{rest}", rename_to=f"{name}_c{copy}")
            have += 1
    return have


def sized_venv(work, base_python, corpus, total):
    """A copy of the real venv padded to ``total`` distributions, its caches rebuilt."""
    base = Path(base_python).parents[1]
    venv = work / f"venv-{total}"
    python = venv / "bin" / "python"
    stamp = venv / ".bench-built"
    if stamp.exists():
        return current_epfinder(work, python, refresh=True)
    shutil.rmtree(venv, ignore_errors=True)
    shutil.copytree(base, venv, symlinks=True)
    (venv / ".bench-built").unlink(missing_ok=True)
    pad(site_packages(python), corpus, total)
    run([python, "-m", "epfinder", "refresh"], capture_output=True)
    stamp.write_text(f"{total}\n")
    return python


def pytest_project(work):
    """A small project for `pytest --co`: a tests directory with a few test files."""
    project = work / "project"
    tests = project / "tests"
    if tests.exists():
        return project
    tests.mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    for i in range(5):
        body = "\n".join(f"def test_{i}_{j}():\n    assert {j} + 1 == {j + 1}\n" for j in range(8))
        (tests / f"test_mod{i}.py").write_text(
            "import pytest\n\n\n" + body + "\n\n@pytest.mark.parametrize('x', range(4))\n"
            f"def test_param_{i}(x):\n    assert x >= 0\n")
    return project


# --- running -----------------------------------------------------------------------------------------


def command(python, program):
    bindir = str(Path(python).parent)
    return [str(python)] + [arg.replace("{bin}", bindir) for arg in PROGRAMS[program]]


def environment(mode):
    env = child_env()
    env.update(MODES[mode])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def run_once(python, program, mode, cwd, timeout=TIMEOUT):
    """Wall time in ms of one whole process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(command(python, program), env=environment(mode), cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    elapsed = (time.perf_counter() - start) * 1e3
    if proc.returncode:
        raise RuntimeError(f"{program} ({mode}) exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return elapsed


def wall(python, programs, runs, cwd, seed=0, timeout=TIMEOUT):
    """{(program, mode): [ms, ...]} from interleaved rounds, after one warm-up of each pair."""
    pairs = [(p, m) for p in programs for m in MODES]
    for program, mode in pairs:
        run_once(python, program, mode, cwd, timeout)
    times = {pair: [] for pair in pairs}
    shuffle = random.Random(seed).shuffle
    for _ in range(runs):
        shuffle(pairs)
        for program, mode in pairs:
            times[(program, mode)].append(run_once(python, program, mode, cwd, timeout))
    return times


def instructions(python, program, mode, cwd):
    """Whole-process instruction count under callgrind, or None without valgrind."""
    if not shutil.which("valgrind"):
        return None
    env = environment(mode)
    env["PYTHONHASHSEED"] = "0"
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           *command(python, program)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT)
    for line in proc.stderr.splitlines():
        if "Collected" in line:
            return int(line.split()[-1])
    raise RuntimeError(f"callgrind {program} ({mode}): {proc.stderr[-2000:]}")


def paired_ratio(times, program):
    on, off = times[(program, "on")], times[(program, "off")]
    return statistics.median(a / b for a, b in zip(on, off))


# --- report ------------------------------------------------------------------------------------------


def fmt_ms(ms):
    return f"{ms / 1e3:.2f} s" if ms >= 10_000 else f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def table(programs, times, counts):
    lines = ["| program | off (plain) | on | on/off wall | instructions off | instructions on | on/off instr. |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for program in programs:
        off = statistics.median(times[(program, "off")])
        on = statistics.median(times[(program, "on")])
        ioff, ion = counts.get((program, "off")), counts.get((program, "on"))
        instr = ("| | | |" if ioff is None else
                 f"| {ioff / 1e6:.0f} M | {ion / 1e6:.0f} M | {ion / ioff:.3f} |")
        lines.append(f"| {program} | {fmt_ms(off)} | {fmt_ms(on)} | {paired_ratio(times, program):.2f} {instr}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="274,1274,5274",
                        help="distributions in site-packages, comma-separated (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=9, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--programs", default=",".join(DEFAULT_PROGRAMS),
                        help="comma-separated, among: " + "; ".join(PROGRAMS))
    parser.add_argument("--callgrind", action=argparse.BooleanOptionalAction, default=True,
                        help="also count instructions once per cell under callgrind (default: on)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venv")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "epfinder-bench-programs"))
    parser.add_argument("--write", help="also write the Markdown to this file")
    args = parser.parse_args(argv)
    programs = [p.strip() for p in args.programs.split(",") if p.strip()]
    for program in programs:
        if program not in PROGRAMS:
            parser.error(f"unknown program {program!r}")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    base = base_venv(work, args.python)
    corpus = corpus_tree(work / "corpus")
    project = pytest_project(work)
    version = run([base, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                  text=True).stdout.strip()
    lines = [f"Python {version}; {args.runs} interleaved rounds (wall: medians; on/off: median of the "
             "per-round ratios); instructions: one run under callgrind per cell.", ""]
    for size in [int(s) for s in args.sizes.split(",")]:
        python = sized_venv(work, base, corpus, size)
        actual = count_dists(site_packages(python))
        times = wall(python, programs, args.runs, project)
        counts = {}
        if args.callgrind:
            for program in programs:
                for mode in MODES:
                    counts[(program, mode)] = instructions(python, program, mode, project)
        block = [f"### {actual} distributions", ""] + table(programs, times, counts) + [""]
        print("\n".join(block), flush=True)
        lines += block
    text = "\n".join(lines)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

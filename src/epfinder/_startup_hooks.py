"""Order and run the startup hooks of an environment (the group ``epfinder.startup``).

Runs at interpreter start, but only when the hook table lists hooks (or a site directory changed):
_epfinder_boot checks that first. Stdlib-only: it imports nothing that start-up has not loaded,
except ``time`` under EPFINDER_TRACE, ``fnmatch`` for a pattern in a skip list and ``traceback``
to show a failure's traceback. The contract it implements is docs/startup-hooks.md.
"""

import sys

import _epfinder_boot as _boot

GROUP = "epfinder.startup"
DEFAULT_PRIORITY = 500


def normalize(name):
    """importlib.metadata's Prepared.normalize, without re (which start-up does not load)."""
    out = []
    run = False
    for c in name:
        if c in "-_.":
            if not run:
                out.append("-")
            run = True
        else:
            out.append(c)
            run = False
    return "".join(out).lower().replace("-", "_")


def parse_hook_name(name):
    """(priority or None, label): "NNN-label" with NNN in 0..999 gives a priority."""
    head, sep, label = name.partition("-")
    if sep and label and 0 < len(head) <= 3 and all(c in "0123456789" for c in head):
        return int(head), label
    return None, name


class Hook:
    """One registered startup hook, as the table and the settings describe it."""

    __slots__ = ("id", "dist", "name", "label", "value", "priority", "priority_from",
                 "dist_name", "version", "site_dir", "enabled", "why")

    def __init__(self, dist, name, value, dist_name, version, site_dir):
        self.dist, self.name, self.value = dist, name, value
        self.dist_name, self.version, self.site_dir = dist_name, version, site_dir
        priority, self.label = parse_hook_name(name)
        self.id = f"{dist}:{self.label}"
        self.priority, self.priority_from = (
            (priority, "name") if priority is not None else (DEFAULT_PRIORITY, "default"))
        self.enabled, self.why = True, ""

    def describe(self):
        return f"{self.dist_name or self.dist} {self.version or '?'}"


def load_tables(dirs, checked=None):
    """{site dir: table entry} for ``dirs``, rescanning (and rewriting the table for) changed ones."""
    signatures, tables, stale = checked or _boot.check_startup_tables(dirs)
    if stale:
        from . import _startup_table

        tables = _startup_table.refresh(_boot.startup_table_file(), list(signatures), tables, stale)
    return {p: tables[p] for p in signatures if p in tables}


def _matches(hook_id, patterns):
    for pattern in patterns:
        dist, sep, label = pattern.partition(":")
        pattern = normalize(dist) + sep + label
        if any(c in pattern for c in "*?["):
            # Deferred: fnmatch imports re, which start-up otherwise never loads.
            import fnmatch

            if fnmatch.fnmatchcase(hook_id, pattern):
                return True
        elif pattern == hook_id:
            return True
    return False


def plan(config, skip="", dirs=None, checked=None):
    """(hooks in run order, each with .enabled and .why; problems as one-line strings).

    Imports no hook module: this is also what ``python -m epfinder startup list`` shows.
    """
    if dirs is None:
        dirs = _boot.startup_site_dirs()
    tables = load_tables(dirs, checked)
    hooks, problems, seen = [], [], set()
    for i, path in enumerate(dirs):
        entry = tables.get(path)
        if entry is None:
            continue
        _signature, names, found, bad = entry
        for dist, name, value, dist_name, version in found:
            if dist not in seen:  # shadowed by a distribution of that name earlier on sys.path
                hooks.append(Hook(dist, name, value, dist_name, version, path))
        for dist, child, reason in bad:
            if dist not in seen:
                problems.append(f"startup hooks of {child} in {path} ignored: {reason}")
        if i + 1 < len(dirs) and names:
            seen.update(names.split("\t"))
    disabled = [k[16:] for k, v in config.items() if k.startswith("startup.disable.") and v == "1"]
    skipped = [p.strip() for p in skip.split(",") if p.strip()]
    for hook in hooks:
        override = config.get("startup.priority." + hook.id, "")
        if override.isdigit() and int(override) <= 999:
            hook.priority, hook.priority_from = int(override), "config"
        if _matches(hook.id, disabled):
            hook.enabled, hook.why = False, "disabled (python -m epfinder startup enable ID)"
        elif _matches(hook.id, skipped):
            hook.enabled, hook.why = False, "skipped by EPFINDER_STARTUP_SKIP"
    hooks.sort(key=lambda h: (h.priority, h.dist, h.label, h.name))
    return hooks, problems


def _say(line):
    try:
        sys.stderr.write(f"epfinder: {line}\n")
        sys.stderr.flush()
    except Exception:
        pass  # no usable stderr (pythonw, a closed descriptor): stay silent rather than fail the start


def run(config, environ, trace, dirs, checked):
    """Run the hooks; each failure is one line on stderr. SystemExit and KeyboardInterrupt propagate."""
    if trace:
        # Deferred: only tracing needs a clock.
        import time

        clock = time.perf_counter_ns
        started = clock()
    try:
        hooks, problems = plan(config, environ.get("EPFINDER_STARTUP_SKIP", ""), dirs, checked)
    except Exception as exc:
        _say(f"startup hooks not run: {type(exc).__name__}: {exc}")
        return
    for problem in problems:
        _say(problem)
    if trace:
        _say(f"startup: {len(hooks)} hook(s) found in {(clock() - started) / 1e6:.2f} ms")
    ran = failed = 0
    for hook in hooks:
        if not hook.enabled:
            if trace:
                _say(f"startup: {hook.id} {hook.why}")
            continue
        ran += 1
        t0 = t1 = clock() if trace else 0
        stage = "was vetoed by an audit hook"
        try:
            sys.audit("epfinder.startup", hook.id, hook.value)
            stage = "could not be loaded"
            target = load(hook.value)
            t1 = clock() if trace else 0
            stage = "failed"
            target()
        except Exception as exc:
            failed += 1
            _say(f"startup hook {hook.id} ({hook.describe()}, {hook.value}) {stage}: "
                 f"{type(exc).__name__}: {exc}")
            if trace:
                import traceback

                traceback.print_exc()
            continue
        if trace:
            _say(f"startup: {hook.id} ({hook.priority}, {hook.describe()}) "
                 f"import {(t1 - t0) / 1e6:.2f} ms, call {(clock() - t1) / 1e6:.2f} ms")
    if trace:
        _say(f"startup: ran {ran} hook(s), {failed} failed, {len(hooks) - ran} skipped, "
             f"{(clock() - started) / 1e6:.2f} ms in all")


def load(value):
    """EntryPoint.load for "module:attr.path [extras]", without importlib.metadata."""
    module, sep, attr = value.partition("[")[0].partition(":")
    module, attr = module.strip(), attr.strip()
    if not sep or not module or not attr:
        raise ValueError(f"{value!r} is not 'module:callable'")
    __import__(module)
    target = sys.modules[module]
    for part in attr.split("."):
        target = getattr(target, part)
    return target

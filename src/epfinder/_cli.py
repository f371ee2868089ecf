"""python -m epfinder: switch an environment on or off, refresh, inspect and verify its caches."""

import argparse
import os
import sys
import time

import _epfinder_boot as _boot

from . import _api, _cache, _scan
from .errors import CacheError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, no usage dump: the usage is one `--help` away.
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _parser():
    parser = _Parser(prog="epfinder", description="Per-directory caches for importlib.metadata.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser("install", help="switch epfinder on for this environment and build its caches")
    p.add_argument("--user", action="store_true", help="the user site (where pip install --user put epfinder)")
    p.add_argument("--mode", choices=_boot.MODES[1:], default=_boot.DEFAULT_MODE)
    p = sub.add_parser("uninstall", help="switch it off and remove every cache and file it wrote")
    p.add_argument("--user", action="store_true")
    p = sub.add_parser("refresh", help="rebuild the caches of PATHs (default: every directory on sys.path)")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p = sub.add_parser("status", help="where each sys.path entry's cache is and whether it is fresh")
    p.add_argument("--json", action="store_true")
    sub.add_parser("verify", help="compare every cache with a fresh scan; exit 1 when one differs")
    p = sub.add_parser("startup", help="list, order and switch off the startup hooks of this environment")
    hooks = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    q = hooks.add_parser("list", help="the hooks in the order they run, without importing any of them")
    q.add_argument("--json", action="store_true")
    for action, text in (("disable", "never run hook ID (a pattern such as 'mypkg:*' works too)"),
                         ("enable", "run hook ID again")):
        q = hooks.add_parser(action, help=text)
        q.add_argument("id", metavar="ID", help="<distribution>:<label>, as startup list shows it")
    q = hooks.add_parser("priority", help="run hook ID at priority N (0-999, lower first), or 'default'")
    q.add_argument("id", metavar="ID")
    q.add_argument("priority", metavar="N")
    return parser


def main(argv=None):
    """Run the command line tool; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            raise _UsageError("a command is required (install, uninstall, refresh, status, verify, startup)")
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        print(f"epfinder: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# --- the environment ----------------------------------------------------------------------------


def _package_site():
    """The site directory epfinder is installed in: where its .pth is and its config must be."""
    return os.path.dirname(os.path.abspath(_boot.__file__))


def _site_dirs():
    import site

    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


def _target(args):
    import site

    target = _package_site()
    if args.user and os.path.normcase(target) != os.path.normcase(site.getusersitepackages()):
        raise _UsageError(f"epfinder is installed in {target}, not in the user site; drop --user")
    if not os.path.exists(os.path.join(target, "epfinder.pth")):
        raise _UsageError(
            f"{target} has no epfinder.pth, so interpreters would never load epfinder; "
            "install epfinder from a wheel (pip install epfinder), not from a source tree"
        )
    return target


def _config_path(site_dir):
    return os.path.join(site_dir, _boot.CONFIG_DIR, _boot.CONFIG_FILE)


def _write_config(site_dir, values):
    folder = os.path.join(site_dir, _boot.CONFIG_DIR)
    os.makedirs(folder, exist_ok=True)
    text = "# written by python -m epfinder install; remove with python -m epfinder uninstall\n"
    text += "".join(f"{k} = {v}\n" for k, v in values.items())
    tmp = _config_path(site_dir) + f".tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, _config_path(site_dir))


def _cmd_install(args):
    target = _target(args)
    config = _boot.read_config(target) or {}
    was = config.get("enabled") == "1" and config.get("mode", _boot.DEFAULT_MODE) == args.mode
    config.update(enabled="1", mode=args.mode)
    try:
        _write_config(target, config)
    except OSError as exc:
        raise _UsageError(f"cannot write {_config_path(target)}: {exc.strerror}") from None
    _write_start_file(target)
    print(f"epfinder: {'already enabled' if was else 'enabled'} for {target} (mode {args.mode})")
    _report_refresh(_api.refresh(_site_dirs(), wait=True, opt_in=True))
    _refresh_startup()
    return 0


# PEP 829: from 3.18, site runs no .pth import line, only .start entries. On 3.15 to 3.17 a .start
# file would make every start import pkgutil and re, and disable the .pth line that works there,
# so it is written only where it is the one way in (docs/startup.md).
START_FILE = "epfinder.start"


def _write_start_file(target):
    if sys.version_info >= (3, 18):
        with open(os.path.join(target, START_FILE), "w", encoding="utf-8") as f:
            f.write("# written by python -m epfinder install (PEP 829); see docs/startup.md\n_epfinder_boot:boot\n")


def _cmd_uninstall(args):
    target = _target(args)
    removed = []
    start = os.path.join(target, START_FILE)
    if os.path.exists(start):
        os.unlink(start)
        removed.append(start)
    config = _config_path(target)
    if os.path.exists(config):
        os.unlink(config)
        removed.append(config)
    for path in dict.fromkeys(_site_dirs() + [p for p in sys.path if isinstance(p, str)]):
        if not os.path.isabs(path):
            continue
        removed.extend(_cache.discard(path))
        table = os.path.join(path, _cache.SUBDIR, _boot.STARTUP_TABLE)
        if os.path.exists(table):
            os.unlink(table)
            removed.append(table)
        folder = os.path.join(path, _cache.SUBDIR)
        try:
            for leftover in os.listdir(folder):
                if leftover.startswith(".tmp-"):
                    os.unlink(os.path.join(folder, leftover))
            os.rmdir(folder)
            removed.append(folder + os.sep)
        except OSError:
            pass
    print(f"epfinder: switched off for {target}; removed {len(removed)} file(s)")
    for path in removed:
        print(f"  {path}")
    return 0


def _cmd_refresh(args):
    if args.paths:
        paths = []
        for path in args.paths:
            if not os.path.isdir(path):
                raise _UsageError(f"not a directory: {path}")
            paths.append(os.path.abspath(path))
        done = _api.refresh(paths, wait=True, opt_in=True)
    else:
        done = _api.refresh(None, wait=True)
    _report_refresh(done)
    if not args.paths:
        _refresh_startup()
    return 0


def _refresh_startup():
    if not _environment()["enabled"]:
        return
    from . import _startup_table

    if _startup_table.rebuild(wait=True):
        print(f"  startup hook table -> {_boot.startup_table_file()}")
    else:
        print("  startup hook table: not written (a site directory is changing or unwritable); "
              "rescanned at each start until it is")


def _report_refresh(done):
    for path, count in done.items():
        if count is None:
            print(f"  {path}: changing too fast to cache (scanned, not written)")
        else:
            where = _written_file(path)
            print(f"  {path}: {count} distribution(s) -> {where}")


def _written_file(path):
    for file in _cache.candidate_files(path):
        if os.path.exists(file):
            return file
    return "(not written: no writable location)"


# --- status and verify --------------------------------------------------------------------------


def _entry_status(path):
    """What epfinder does with one sys.path entry, as a dict."""
    info = {"path": path, "cache": None, "state": None, "distributions": None, "entry_points": None}
    if type(path) is not str or not os.path.isabs(path):
        info["state"] = "plain (relative entry: always scanned)"
        return info
    if not os.path.isdir(path):
        info["state"] = "plain (not a directory)" if os.path.exists(path) else "plain (does not exist)"
        return info
    if os.path.basename(path).lower().endswith(".egg"):
        info["state"] = "plain (egg: always scanned)"
        return info
    signature = _scan.dir_signature(os.stat(path))
    racy = time.time_ns() - max(signature[2:]) < _cache.WALL_CLOCK_MARGIN_NS
    for file in _cache.candidate_files(path):
        try:
            with open(file, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            info.update(cache=file, state=f"unreadable ({exc.strerror})")
            return info
        info["cache"] = file
        try:
            cache = _cache.DirCache(path, data)
            entry_points = sum(sum(1 for _ in cache.group(g)) for g in cache.groups)
        except CacheError as exc:
            info["state"] = f"corrupt ({exc}): will be rebuilt"
            return info
        if cache.signature == signature:
            info["state"] = "fresh"
        elif racy:
            info["state"] = "racy: changed in the last seconds, scanned at each query until it settles"
        else:
            info["state"] = "stale: will be rebuilt at the next query"
        info["distributions"] = cache.count
        info["entry_points"] = entry_points
        return info
    if not _can_write(path):
        info["state"] = "missing (unwritable: scanned at each query)"
    elif racy:
        info["state"] = "racy: changed in the last seconds, scanned at each query until it settles"
    else:
        info["state"] = "missing: built at the next query"
    return info


def _can_write(path):
    if _cache.caches_in_directory(path):
        sub = os.path.join(path, _cache.SUBDIR)
        if os.access(sub if os.path.isdir(sub) else path, os.W_OK):
            return True
    root = _cache.user_cache_root()
    while not os.path.exists(root):
        root = os.path.dirname(root)
    return os.access(root, os.W_OK)


def _environment():
    site_dir = _package_site()
    config = _boot.read_config(site_dir) or {}
    enabled = config.get("enabled") == "1"
    env = _boot.env_mode()
    return {
        "site": site_dir,
        "enabled": enabled,
        "mode": (env or config.get("mode") or _boot.DEFAULT_MODE) if enabled or env else "off",
        "mode_from": "EPFINDER_MODE" if env else ("config" if enabled else "not enabled"),
        "active_in_this_process": _boot.mode,
    }


def _startup_summary(env):
    if not env["enabled"]:
        return None
    config = _boot.read_config(env["site"]) or {}
    environ = {} if sys.flags.ignore_environment else os.environ
    hooks, problems = _boot.startup_plan(config, environ.get("EPFINDER_STARTUP_SKIP", ""))
    off = environ.get("EPFINDER_STARTUP", "").strip().lower() in _boot.OFF
    return {"registered": len(hooks), "enabled": 0 if off else sum(h["enabled"] for h in hooks),
            "problems": problems}


def _cmd_status(args):
    report = {"environment": _environment(), "sys.path": [_entry_status(p) for p in sys.path]}
    report["startup hooks"] = _startup_summary(report["environment"])
    if args.json:
        import json

        print(json.dumps(report, indent=2))
        return 0
    env = report["environment"]
    print(f"epfinder for {env['site']}: {'enabled' if env['enabled'] else 'not enabled'}, "
          f"mode {env['mode']} ({env['mode_from']})")
    hooks = report["startup hooks"]
    if hooks is not None:
        print(f"  startup hooks: {hooks['registered']} registered, {hooks['enabled']} enabled"
              f"{', ' + str(len(hooks['problems'])) + ' problem(s)' if hooks['problems'] else ''}"
              " (python -m epfinder startup list)")
    for info in report["sys.path"]:
        counts = ""
        if info["distributions"] is not None:
            counts = f", {info['distributions']} distribution(s), {info['entry_points']} entry point(s)"
        print(f"  {info['path'] or repr(info['path'])}: {info['state']}{counts}")
        if info["cache"]:
            print(f"      cache: {info['cache']}")
    return 0


def _tables(cache):
    return {
        "distributions": [
            (cache.entry(i), cache.name(i), cache.version(i), cache.normalized()[i])
            for i in range(cache.count)
        ],
        "entry points": cache.all_entry_points(),
        "index": {k: list(cache.lookup(k)) for k in cache.index_keys()},
    }


def _cmd_verify(args):
    # Modes that use a cache without checking it make a stale cache a wrong answer.
    unchecked = _environment()["mode"] in ("trust", "only")
    problems = 0
    checked = 0
    for path in sys.path:
        if type(path) is not str or not os.path.isabs(path) or not os.path.isdir(path):
            continue
        cache = _cache.load(path)
        if cache is None:
            if unchecked:
                problems += 1
                print(f"{path}: no cache (mode {_environment()['mode']} does not scan it)")
            continue
        checked += 1
        if cache.signature != _scan.dir_signature(os.stat(path)):
            problems += unchecked
            print(f"{path}: stale ({'used as it is in this mode' if unchecked else 'the next query rescans it'})")
            continue
        try:
            actual = _tables(cache)
        except CacheError as exc:
            print(f"{path}: corrupt ({exc}); the next query rebuilds it")
            continue
        try:
            expected = _tables(_cache.build(path, write=False))
        except OSError as exc:
            print(f"{path}: cannot be scanned ({exc.strerror})")
            continue
        if expected == actual:
            continue
        problems += 1
        print(f"{path}: the cache differs from a fresh scan")
        for key in expected:
            if expected[key] != actual[key]:
                _print_diff(key, actual[key], expected[key])
    print(f"epfinder: verified {checked} cache(s), {problems} differ from a scan")
    return 1 if problems else 0


def _print_diff(what, cached, scanned):
    import difflib
    import pprint

    lines = difflib.unified_diff(
        pprint.pformat(cached, width=100).splitlines(),
        pprint.pformat(scanned, width=100).splitlines(),
        f"{what} (cache)", f"{what} (scan)", lineterm="", n=1,
    )
    for line in lines:
        print(f"  {line}")


# --- startup hooks --------------------------------------------------------------------------------


def _cmd_startup(args):
    if args.action is None:
        raise _UsageError("startup needs an action (list, disable, enable, priority)")
    if args.action == "list":
        return _startup_list(args)
    dist, sep, label = args.id.partition(":")
    if not sep or not dist or not label:
        raise _UsageError(f"not a hook ID: {args.id!r} (expected <distribution>:<label>, see startup list)")
    hook_id = f"{_boot.normalize(dist)}:{label}"
    priority = getattr(args, "priority", "default")
    if priority != "default" and not (priority.isdigit() and int(priority) <= 999):
        raise _UsageError(f"priority must be 0 to 999 or 'default', not {priority!r}")
    site_dir = _package_site()
    config = _boot.read_config(site_dir)
    if config is None or config.get("enabled") != "1":
        raise _UsageError(f"epfinder is not enabled for {site_dir}; run python -m epfinder install first")
    known = {hook["id"] for hook in _boot.startup_plan({})[0]}
    note = "" if hook_id in known or any(c in hook_id for c in "*?[") else " (no such hook is installed now)"
    if args.action == "disable":
        config[f"startup.disable.{hook_id}"] = "1"
        message = f"disabled {hook_id}{note}"
    elif args.action == "enable":
        was = config.pop(f"startup.disable.{hook_id}", None)
        message = f"enabled {hook_id}{note}" if was else f"{hook_id} was not disabled{note}"
        still = [h["why"] for h in _boot.startup_plan(config)[0] if h["id"] == hook_id and not h["enabled"]]
        if still:
            message += f"; it is still {still[0].split(' (')[0]} by a pattern (see startup list)"
    else:
        key = f"startup.priority.{hook_id}"
        if priority == "default":
            config.pop(key, None)
            message = f"{hook_id} runs at the priority its name gives{note}"
        else:
            config[key] = str(int(priority))
            message = f"{hook_id} runs at priority {int(priority)}{note}"
    try:
        _write_config(site_dir, config)
    except OSError as exc:
        raise _UsageError(f"cannot write {_config_path(site_dir)}: {exc.strerror}") from None
    print(f"epfinder: {message}")
    return 0


def _startup_list(args):
    site_dir = _package_site()
    config = _boot.read_config(site_dir) or {}
    enabled = config.get("enabled") == "1"
    environ = {} if sys.flags.ignore_environment else os.environ
    all_off = environ.get("EPFINDER_STARTUP", "").strip().lower() in _boot.OFF
    hooks, problems = _boot.startup_plan(config, environ.get("EPFINDER_STARTUP_SKIP", ""))
    rows = []
    for order, hook in enumerate(hooks, 1):
        state = "enabled" if hook["enabled"] else hook["why"]
        if hook["enabled"] and (all_off or not enabled):
            state = "off (EPFINDER_STARTUP=0)" if all_off else "off (epfinder is not enabled here)"
        rows.append({
            "order": order, "id": hook["id"], "priority": hook["priority"], "priority_from": hook["priority_from"],
            "distribution": hook["distribution"], "version": hook["version"], "value": hook["value"],
            "site_dir": hook["site_dir"], "enabled": state == "enabled", "state": state,
        })
    if args.json:
        import json

        print(json.dumps({"site": site_dir, "enabled": enabled, "hooks": rows, "problems": problems}, indent=2))
        return 0
    print(f"startup hooks for {site_dir}: {len(rows)}"
          f"{'' if enabled else ' (epfinder is not enabled here, so none runs)'}")
    table = [("#", "id", "priority", "distribution", "value", "state")] + [
        (str(r["order"]), r["id"], f"{r['priority']} ({r['priority_from']})",
         f"{r['distribution']}=={r['version']}", r["value"], r["state"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table if rows else ():
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for directory in dict.fromkeys(r["site_dir"] for r in rows):
        print(f"  from {directory}")
    for problem in problems:
        print(f"  problem: {problem}")
    return 0


_COMMANDS = {
    "install": _cmd_install,
    "uninstall": _cmd_uninstall,
    "refresh": _cmd_refresh,
    "status": _cmd_status,
    "verify": _cmd_verify,
    "startup": _cmd_startup,
}

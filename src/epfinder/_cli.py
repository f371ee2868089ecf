"""python -m epfinder: switch an environment on or off, refresh, inspect and verify its caches.

A function over argv that returns the exit status: 0 for success, 1 when the command could not do
its work (permission denied, nowhere to write, verify found a difference), 2 for a usage error.
Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import _epfinder_boot as _boot

from . import DISTRIBUTION, _api, _cache, _record, _report, _startup_atomic, _startup_costs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, NoReturn, TextIO


class _UsageError(Exception):
    """The command line is wrong: exit status 2."""


class _Failure(Exception):
    """The command could not do its work: exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the usage is one `--help` away.
        raise _UsageError(message)


class _Version(argparse.Action):
    # Looked up only when asked for: importlib.metadata is not imported for any other command.
    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, default: Any = argparse.SUPPRESS,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        import importlib.metadata

        try:
            version = importlib.metadata.version(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "(not installed)"
        _say(f"epfinder {version} (distribution {DISTRIBUTION}, running from {_report.package_site()})")
        raise _Done(0)


class _Done(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


EPILOG = """\
exit status: 0 done; 1 the command could not do its work (permission denied, nowhere to write,
verify found a difference); 2 a usage error.
--json output follows one versioned schema for status, verify and startup list: docs/cli.md."""


def _parser() -> _Parser:
    parser = _Parser(
        prog="epfinder",
        description=f"Per-directory caches that make importlib.metadata fast, and ordered startup hooks "
                    f"(distribution {DISTRIBUTION}).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, help="print the version and where epfinder runs from")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    user_help = "epfinder is installed in the user site (pip install --user): act there"
    base_help = ("from a virtual environment: act on the base interpreter's site-packages, which every "
                 "environment made with --system-site-packages includes")
    p = sub.add_parser("install", help="switch epfinder on for this environment and build its caches")
    p.add_argument("--user", action="store_true", help=user_help)
    p.add_argument("--mode", choices=_boot.MODES[1:], default=_boot.DEFAULT_MODE,
                   help="how far to trust the caches (default auto): auto checks each directory with one "
                        "stat per query; strict also each distribution's files; trust uses a cache read "
                        "once as it is; only never scans (docs/modes.md)")
    p.add_argument("--base", action="store_true", help=base_help)
    p = sub.add_parser("uninstall", help="switch epfinder off and remove its config, hook table and the "
                                         "caches of this environment")
    p.add_argument("--user", action="store_true", help=user_help)
    p.add_argument("--base", action="store_true", help=base_help)
    p = sub.add_parser("refresh", help="rebuild caches now: of every directory on sys.path, or of PATHs")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="a directory to cache inside itself (PATH/.epfinder-cache/, created if it can be), "
                        "so that every user and environment reading PATH uses that cache")
    json_help = "print a JSON report instead (schema: docs/cli.md)"
    p = sub.add_parser("status", help="what the next interpreter does: mode, startup hooks, each sys.path "
                                      "entry's cache")
    p.add_argument("--json", action="store_true", help=json_help)
    p = sub.add_parser("verify", help="compare every cache with a fresh scan; exit 1 when one differs or "
                                      "the mode would answer wrongly")
    p.add_argument("--json", action="store_true", help=json_help)
    p = sub.add_parser("startup", help="list, order and switch off the startup hooks of this environment")
    hooks = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    q = hooks.add_parser("list", help="the hooks in the order they run, and what each last cost, "
                                      "without importing any of them")
    q.add_argument("--json", action="store_true", help=json_help)
    q.add_argument("--measure", action="store_true",
                   help="start one interpreter with EPFINDER_TRACE=1 first, which runs the hooks, to "
                        "measure what each costs")
    q.add_argument("--all", action="store_true",
                   help="everything that runs code at start, in the order site runs it: .pth lines, "
                        ".start entries, sitecustomize, usercustomize and the hooks, with their owners")
    q.add_argument("--time", action="store_true",
                   help="with --all: measure each item (import and call) in a child interpreter")
    id_help = "<distribution>:<label>, as startup list shows it"
    q = hooks.add_parser("disable", help="never run hook ID (a pattern such as 'mypkg:*' works too)")
    q.add_argument("id", metavar="ID", help=id_help + ", or an fnmatch pattern")
    q = hooks.add_parser("enable", help="remove a disable setting for ID (a hook or a pattern)")
    q.add_argument("id", metavar="ID", help=id_help + ", or the pattern given to disable")
    q = hooks.add_parser("priority", help="run hook ID at priority N instead of the one its name gives")
    q.add_argument("id", metavar="ID", help=id_help)
    q.add_argument("priority", metavar="N", help="0 to 999 (lower runs first), or 'default' to drop the override")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool; returns the exit status.

    ``argv`` None means the real command line: then the ``sys.path`` entry that starting the tool
    added (the current directory for ``python -m``, the script's folder for ``epfinder``) is left
    out of what the commands report and cache.
    """
    tool_entry = None
    if argv is None:
        argv = sys.argv[1:]
        tool_entry = _tool_entry()
    try:
        try:
            args = _parser().parse_args(argv)
        except _Done as done:
            return done.status
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            raise _UsageError("a command is required (install, uninstall, refresh, status, verify, startup)")
        args.sys_path = [p for i, p in enumerate(sys.path) if i != tool_entry]
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        _complain(exc)
        return 2
    except _Failure as exc:
        _complain(exc)
        return 1
    except OSError as exc:
        # A file system refusal that no command foresaw: still one line, and a runtime failure.
        _complain(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        _flush()


def _tool_entry() -> int | None:
    """The index in sys.path of the entry that starting this tool added, or None.

    ``python -m epfinder`` puts the current directory first, the ``epfinder`` script its own
    folder (with symlinks resolved); ``-I`` and ``-P`` put nothing there.
    """
    if not sys.path or sys.flags.isolated or getattr(sys.flags, "safe_path", False):
        return None
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    try:
        if spec is not None and spec.name == "epfinder.__main__":
            expected = os.getcwd()
        elif sys.argv and sys.argv[0] and sys.argv[0] != "-c":
            expected = os.path.dirname(os.path.realpath(sys.argv[0]))
        else:
            expected = os.getcwd()  # -c: the entry is '' (the current directory)
        first = sys.path[0]
        if type(first) is str and os.path.realpath(first or os.curdir) == os.path.realpath(expected):
            return 0
    except OSError:
        pass  # the current directory was deleted: nothing to match
    return None


# --- output that survives a closed pipe (`epfinder status | head -1`) ----------------------------------


def _detach(stream: TextIO) -> None:
    # The reader is gone: send the rest to /dev/null so that the command still finishes its work
    # (install must still write the hook table) and Python's final flush stays quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _say(line: str = "", stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    try:
        stream.write(f"{line}\n")
    except BrokenPipeError:
        _detach(stream)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            _detach(stream)
        except (OSError, ValueError):
            pass


def _complain(message: str | Exception) -> None:
    _flush()
    _say(f"epfinder: error: {message}", sys.stderr)


def _print_json(report: dict[str, Any]) -> None:
    import json

    _say(json.dumps({"schema_version": _report.SCHEMA_VERSION, **report}, indent=2))


# --- the environment ----------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> dict[str, Any]:
    """The site directory to switch on or off: where epfinder runs from, which must be installed.

    In a virtual environment, only its own site directories (docs/security.md, rule 8): an
    epfinder that runs from the base interpreter's site-packages (a venv made with
    --system-site-packages) is switched there only when --base names it on purpose.
    """
    import site

    env = _report.environment()
    target = env["site_dir"]
    if args.user and os.path.normcase(target) != os.path.normcase(site.getusersitepackages()):
        raise _UsageError(f"epfinder is installed in {target}, not in the user site; drop --user")
    if sys.prefix != sys.base_prefix and not args.user:
        if args.base:
            base_dirs = _prefix_site_dirs(sys.base_prefix)
            found = [d for d in base_dirs if os.path.exists(os.path.join(d, "_epfinder_boot.py"))]
            if not found:
                raise _UsageError(f"epfinder is not installed in the base interpreter's site-packages "
                                  f"({', '.join(base_dirs) or sys.base_prefix})")
            env = _report.environment(found[0])
            target = env["site_dir"]
        elif env["state"] != "not_installed" and not _within(target, _prefix_site_dirs(sys.prefix)) \
                and _within(target, _prefix_site_dirs(sys.base_prefix) + [site.getusersitepackages()]):
            raise _UsageError(
                f"epfinder is installed in {target}, outside this virtual environment ({sys.prefix}), and "
                "switching it there affects every environment that includes that directory; install "
                "epfinder into this environment, or name that directory on purpose with "
                f"{'--user' if _within(target, [site.getusersitepackages()]) else '--base'}")
    elif args.base and not _within(target, _prefix_site_dirs(sys.base_prefix)):
        raise _UsageError(f"epfinder is installed in {target}, not in the base interpreter's site-packages")
    if env["state"] == "not_installed":
        raise _Failure(f"{env['message']}. Install the distribution first: python -m pip install "
                       f"{DISTRIBUTION} (or python -m pip install . in a checkout)")
    return env


def _prefix_site_dirs(prefix: str) -> list[str]:
    import site

    return [d for d in site.getsitepackages([prefix]) if os.path.isdir(d)]


def _within(path: str, dirs: Iterable[str]) -> bool:
    return any(_same(path, d) for d in dirs)


def _scope(target: str) -> list[str]:
    """The site directories that install and uninstall act on: those of ``target``'s environment.

    Never the base interpreter's from a virtual environment made with --system-site-packages
    (unless --base made the base the target), and the user site only when it is the target.
    """
    import site

    if _within(target, [site.getusersitepackages()]):
        return [target]
    for prefix in (sys.prefix, sys.base_prefix):
        dirs = _prefix_site_dirs(prefix)
        if _within(target, dirs):
            return dirs
    return [target]


def _owner_hint(path: str) -> str:
    try:
        import pwd

        owner = pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (ImportError, KeyError, OSError):
        return ""
    return f" ({path} belongs to {owner})"


def _config_path(site_dir: str) -> str:
    return os.path.join(site_dir, _boot.CONFIG_DIR, _boot.CONFIG_FILE)


def _write_config(site_dir: str, values: dict[str, str]) -> None:
    text = "# written by python -m epfinder install; remove with python -m epfinder uninstall\n"
    text += "".join(f"{k} = {v}\n" for k, v in values.items())
    try:
        # A random temporary name created with O_EXCL|O_NOFOLLOW in a checked folder (made 0755),
        # 0644, fsync'ed, then renamed: see epfinder._startup_atomic and docs/security.md.
        _startup_atomic.write(_config_path(site_dir), text.encode("utf-8"), fsync=True, create_dir=True)
    except OSError as exc:
        raise _Failure(f"cannot write {_config_path(site_dir)}: {exc.strerror or exc}{_owner_hint(site_dir)}") from None


def _sync_record(site_dir: str) -> None:
    # Best effort: a RECORD that cannot be rewritten only means pip uninstall leaves these files.
    try:
        _record.add(site_dir)
    except OSError:
        pass


def _cmd_install(args: argparse.Namespace) -> int:
    env = _target(args)
    target = env["site_dir"]
    config = env["_config"]
    was = config.get("enabled") == "1" and config.get("mode", _boot.DEFAULT_MODE) == args.mode
    config.update(enabled="1", mode=args.mode)
    _write_config(target, config)
    _write_entry_file(target)
    _sync_record(target)
    _say(f"epfinder: {'already enabled' if was else 'enabled'} for {target} (mode {args.mode})")
    env = _report.environment(target)
    if env["state"] != "enabled":
        _say(f"  note: in this shell, {env['message']}")
    status = _refresh(_program_site_dirs(args, _scope(target)), opt_in=True)
    env = _report.environment(target)
    _refresh_startup(env)
    _sync_record(target)
    hooks, _problems = _report.plan(env)
    if hooks:
        # Hooks run from the next start on: measure them once now, so that status shows their cost.
        if any(row["state"] == "runs" for row in _report.hook_rows(env, hooks, None)):
            _measure(env, quiet=True)
        _print_hooks_line(env)
    return status


def _program_site_dirs(args: argparse.Namespace, scope: list[str]) -> list[str]:
    # The target environment's site directories (``scope``), in the order a program's sys.path has
    # them: never a base interpreter's from a venv that includes it (docs/security.md, rule 8).
    dirs = [d for d in _report.site_dirs() if _within(d, scope)] or list(scope)
    ordered = [p for p in args.sys_path if p in dirs]
    return list(dict.fromkeys(ordered + dirs))


def _write_entry_file(target: str) -> None:
    # The .pth (or, from 3.18, .start) that makes site run _epfinder_boot: see _record.entry_file.
    name, text = _record.entry_file()
    try:
        _startup_atomic.write(os.path.join(target, name), text.encode("utf-8"))
    except OSError as exc:
        raise _Failure(f"cannot write {os.path.join(target, name)}: {exc.strerror or exc}"
                       f"{_owner_hint(target)}") from None


def _cmd_uninstall(args: argparse.Namespace) -> int:
    env = _target(args)
    target = env["site_dir"]
    folder = os.path.join(target, _cache.SUBDIR)
    if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
        raise _Failure(f"cannot remove the files in {folder}: Permission denied{_owner_hint(folder)}")
    was_enabled = env["_config"].get("enabled") == "1"
    removed, kept = [], []

    def unlink(path: str) -> None:
        # By name inside a folder that passes epfinder._startup_atomic's checks: never through a symlinked
        # or foreign folder (docs/security.md, rule 4).
        try:
            if _startup_atomic.remove(path):
                removed.append(path)
        except OSError as exc:
            raise _Failure(f"cannot remove {path}: {exc.strerror or exc}{_owner_hint(os.path.dirname(path))}") from None

    def listing(sub: str) -> list[str] | None:
        # The names in ``sub``, or None when it is missing or refused (then it is kept, and why).
        try:
            fd = _startup_atomic.open_dir(sub)
        except FileNotFoundError:
            return None
        except OSError as exc:
            kept.append((sub + os.sep, f"left alone: {exc.strerror or exc}; nothing is deleted through it"))
            return None
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    # Its own site directory: first what makes site run epfinder and the config, so that no start
    # after this one loads anything.
    for name in (_record.PTH_FILE, _record.START_FILE):
        unlink(os.path.join(target, name))
    try:
        os.close(_startup_atomic.open_dir(folder))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _Failure(f"cannot remove the files in {folder}: {exc.strerror or exc}{_owner_hint(folder)}") from None
    else:
        for name in (_boot.CONFIG_FILE, _boot.STARTUP_TABLE, *_boot.OLD_STARTUP_TABLES, _startup_costs.FILENAME):
            unlink(os.path.join(folder, name))
    # The site directories of the target's environment (never a base interpreter's from a venv that
    # includes it, unless --base made it the target), then the other entries inside that
    # environment's prefix.
    scope = _scope(target)
    prefix = sys.base_prefix if not _within(target, _prefix_site_dirs(sys.prefix)) \
        and _within(target, _prefix_site_dirs(sys.base_prefix)) else sys.prefix
    own = [target] + [d for d in scope if not _same(d, target)]
    others = dict.fromkeys(p for p in _report.site_dirs() + list(args.sys_path)
                           if type(p) is str and os.path.isabs(p) and os.path.isdir(p))
    inside = [p for p in others if _inside(p, prefix) and not any(_same(p, o) for o in own)
              and not any(_same(p, d) for d in _report.site_dirs() if not _within(d, scope))]
    for path in own + inside:
        sub = os.path.join(path, _cache.SUBDIR)
        names = listing(sub)
        if names is None:
            continue
        old = [os.path.join(sub, name) for name in _cache.OLD_FILENAMES]
        for file in [_cache.in_directory_file(path), *old] + [os.path.join(sub, f) for f in names
                                                               if f.startswith("top-level-")]:
            unlink(file)
        for leftover in names:
            if leftover.startswith(_startup_atomic.TEMP_PREFIX):
                unlink(os.path.join(sub, leftover))
        if _startup_atomic.remove_dir(sub):
            removed.append(sub + os.sep)
        else:
            kept.append((sub + os.sep, "it holds files epfinder did not write"))
    # Per-user caches: exactly this installation's folder (other environments have their own).
    root = _cache.user_cache_root()
    names = listing(root)
    if names is not None:
        for name in sorted(names):
            unlink(os.path.join(root, name))
        if _startup_atomic.remove_dir(root):
            removed.append(root + os.sep)
        else:
            kept.append((root + os.sep, "it holds files epfinder did not write"))
    for path in others:
        sub = os.path.join(path, _cache.SUBDIR)
        if path not in inside and not any(_same(path, o) for o in own) and os.path.isdir(sub):
            kept.append((sub + os.sep, "outside this environment, so other environments may read it"))
    try:
        _record.remove(target)
    except OSError:
        pass
    _say(f"epfinder: {'switched off' if was_enabled else 'was not enabled'} for {target}; "
         f"removed {len(removed)} file(s) and folder(s)")
    for path in removed:
        _say(f"  {path}")
    for path, why in kept:
        _say(f"  kept {path}: {why}")
    return 0


def _inside(path: str, prefix: str) -> bool:
    path, prefix = os.path.realpath(path), os.path.realpath(prefix)
    return path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep)


def _same(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _side_files_in(sub: str) -> list[str]:
    return [os.path.join(sub, f) for f in os.listdir(sub) if f.startswith("top-level-")]


# --- refresh -----------------------------------------------------------------------------------------


def _snapshot(path: str) -> dict[str, tuple[int, int, int]]:
    found: dict[str, tuple[int, int, int]] = {}
    for file in _cache.candidate_files(path):
        try:
            st = os.stat(file)
        except OSError:
            continue
        found[file] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found


def _refresh(paths: Iterable[str], opt_in: bool) -> int:
    """Rebuild the caches of ``paths`` and report each; returns 1 when one could not be written."""
    failed = []
    for path in dict.fromkeys(paths):
        if type(path) is not str or not os.path.isabs(path) or not os.path.isdir(path):
            continue
        if os.path.basename(path).lower().endswith(".egg"):
            continue
        before = _snapshot(path)
        had_folder = os.path.isdir(os.path.join(path, _cache.SUBDIR))
        done = _api.refresh([path], wait=True, opt_in=opt_in)
        if opt_in and not had_folder and os.path.isdir(os.path.join(path, _cache.SUBDIR)) \
                and not _is_site_dir(path):
            _say(f"  created {os.path.join(path, _cache.SUBDIR)}{os.sep}: {path} keeps its cache inside "
                 "itself from now on, for every user and environment (delete that folder to undo)")
        if path not in done:
            failed.append(path)
            _say(f"  {path}: cannot be listed, not cached")
            continue
        if done[path] is None:
            failed.append(path)
            _say(f"  {path}: changing too fast to cache (scanned, not written)")
            continue
        after = _snapshot(path)
        written = [f for f in after if after[f] != before.get(f)]
        if written:
            _say(f"  {path}: {done[path]} distribution(s) -> {written[0]}")
            first = _cache.candidate_files(path)[0]
            if written[0] != first and first in after and _stale_first(path):
                _say(f"    note: queries read {first} first, which this user cannot rewrite: until its owner "
                     "runs refresh, they scan this directory")
        else:
            failed.append(path)
            where = " nor ".join(_cache.candidate_files(path))
            _say(f"  {path}: {done[path]} distribution(s), not written: neither {where} can be written")
    if failed:
        _say(f"epfinder: {len(failed)} director{'y' if len(failed) == 1 else 'ies'} could not be cached; "
             "their queries scan them")
        return 1
    return 0


def _stale_first(path: str) -> bool:
    # Whether the cache queries read first for ``path`` is out of date.

    cache = _cache.load(path)
    try:
        return cache is not None and cache.signature != _boot.dir_signature(os.stat(path))
    except OSError:
        return False


def _is_site_dir(path: str) -> bool:
    return any(_same(path, d) for d in _report.site_dirs())


def _cmd_refresh(args: argparse.Namespace) -> int:
    env = _report.environment()
    if args.paths:
        paths = []
        for path in args.paths:
            if not os.path.isdir(path):
                raise _UsageError(f"not a directory: {path}")
            paths.append(os.path.abspath(path))
    else:
        paths = args.sys_path
    if env["state"] in ("not_installed", "not_enabled"):
        _say(f"epfinder: note: {env['message']}; these caches serve only programs that call "
             "epfinder.enable() or epfinder.entry_points()")
    elif env["state"] != "enabled":
        _say(f"epfinder: note: in this shell, {env['message']}")
    status = _refresh(paths, opt_in=bool(args.paths))
    if not args.paths:
        _refresh_startup(env)
    if env["state"] != "not_installed" and os.path.isdir(os.path.join(env["site_dir"], _cache.SUBDIR)):
        _sync_record(env["site_dir"])
    if status:
        raise _Failure("some caches could not be written (see above)")
    return 0


def _refresh_startup(env: dict[str, Any]) -> None:
    if env["state"] in ("not_installed", "not_enabled"):
        return
    from . import _startup_table

    # The table of the environment in question (install's target), which is not always the one
    # whose config this process started with (a venv that includes an enabled base).
    site_dir = env["site_dir"]
    if _startup_table.rebuild(wait=True, site=site_dir):
        _say(f"  startup hook table -> {os.path.join(site_dir, _boot.CONFIG_DIR, _boot.STARTUP_TABLE)}")
    else:
        _say("  startup hook table: not written (a site directory is changing or unwritable); "
             "rescanned at each start until it is")


# --- status and verify --------------------------------------------------------------------------


def _status_report(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    env = _report.environment()
    hooks, problems = _report.plan(env)
    costs = _startup_costs.read(env["site_dir"])
    rows = _report.hook_rows(env, hooks, costs)
    return env, rows, costs, {
        "command": "status",
        "environment": _report.public(env),
        "startup_hooks": _report.hooks_summary(env, rows, problems, costs),
        "sys_path": [_report.entry_status(p, env) for p in args.sys_path],
    }


def _ago(ns: int | None) -> str:
    if ns is None:
        return "never"
    seconds = time.time() - ns / 1e9
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return "just now"


def _hooks_line(summary: dict[str, Any], rows: list[dict[str, Any]], costs: dict[str, Any] | None) -> str:
    line = f"startup hooks: {summary['message']}"
    if summary["state"] == "run":
        if summary["last_cost_ms"] is not None:
            running = [r for r in rows if r["state"] == "runs" and r["last_import_ms"] is not None]
            slowest = max(running, key=lambda r: r["last_import_ms"] + r["last_call_ms"])
            line += (f", {summary['last_cost_ms']:.1f} ms in all when last measured "
                     # costs is None or a measurement, never {}: `costs and ...` is None or an int.
                     f"({_ago(costs and costs['measured_ns'])}); "  # type: ignore[arg-type]
                     f"slowest {slowest['id']} {slowest['last_import_ms'] + slowest['last_call_ms']:.1f} ms")
        else:
            line += "; their cost is not measured yet (python -m epfinder startup list --measure)"
    if summary["problems"]:
        line += f"; {len(summary['problems'])} problem(s)"
    return line + " (python -m epfinder startup list)"


def _print_hooks_line(env: dict[str, Any]) -> None:
    hooks, problems = _report.plan(env)
    costs = _startup_costs.read(env["site_dir"])
    rows = _report.hook_rows(env, hooks, costs)
    _say(_hooks_line(_report.hooks_summary(env, rows, problems, costs), rows, costs))


def _at_start(args: argparse.Namespace, env: dict[str, Any]) -> dict[str, int]:
    """How many items run code at start, and how many no distribution installed (startup list --all)."""
    from . import _audit

    items = _audit.audit(list(args.sys_path), env["_config"], env["state"] == "enabled")
    running = [i for i in items if i["runs_code"] and not i["disabled_by"]]
    return {"runs_code": len(running), "no_owner": sum(i["owner"]["state"] == "no_owner" for i in running)}


def _cmd_status(args: argparse.Namespace) -> int:
    env, rows, costs, report = _status_report(args)
    report["at_start"] = _at_start(args, env)
    if args.json:
        _print_json(report)
        return 0
    _say(f"epfinder: {env['message']}")
    _say(_hooks_line(report["startup_hooks"], rows, costs))
    at_start = report["at_start"]
    _say(f"at start: {at_start['runs_code']} item(s) run code (.pth lines, .start entries, sitecustomize, "
         f"hooks), {at_start['no_owner']} installed by no distribution (python -m epfinder startup list --all)")
    _say("sys.path, as a program started with this interpreter sees it:")
    for info in report["sys_path"]:
        counts = ""
        if info["distributions"] is not None:
            counts = f" ({info['distributions']} distribution(s), {info['entry_points']} entry point(s))"
        _say(f"  {info['path'] or repr(info['path'])}")
        _say(f"      {info['state']}{counts}: {info['message']}")
        if info["cache"]:
            _say(f"      cache: {info['cache']}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    env = _report.environment()
    entries = [_report.verify_entry(p, env) for p in args.sys_path]
    checked = sum(e["state"] in ("same", "differs") for e in entries)
    problems = sum(e["problem"] for e in entries)
    if args.json:
        _print_json({"command": "verify", "environment": _report.public(env), "checked": checked,
                     "problem_count": problems, "sys_path": entries})
        return 1 if problems else 0
    for info in entries:
        if info["state"] in ("same", "plain", "absent") or (info["state"] == "missing" and not info["problem"]):
            continue
        _say(f"{info['path']}: {info['state']}: {info['message']}")
        for line in info["diff"]:
            _say(f"  {line}")
    _say(f"epfinder: compared {checked} cache(s) with a fresh scan (mode {env['mode']}); "
         f"{problems} problem(s)")
    return 1 if problems else 0


# --- startup hooks --------------------------------------------------------------------------------


def _is_priority(text: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²" (int() rejects it) and "٣" (int() reads 3).
    return text.isascii() and text.isdigit() and int(text) <= 999


def _cmd_startup(args: argparse.Namespace) -> int:
    if args.action is None:
        raise _UsageError("startup needs an action (list, disable, enable, priority)")
    if args.action == "list":
        return _startup_list(args)
    dist, sep, label = args.id.partition(":")
    if not sep or not dist or not label:
        raise _UsageError(f"not a hook ID: {args.id!r} (expected <distribution>:<label>, see startup list)")
    hook_id = f"{_boot.normalize(dist)}:{label}"
    priority = getattr(args, "priority", "default")
    if priority != "default" and not _is_priority(priority):
        raise _UsageError(f"priority must be 0 to 999 or 'default', not {priority!r}")
    env = _report.environment()
    site_dir = env["site_dir"]
    if env["state"] in ("not_installed", "not_enabled"):
        raise _Failure(f"epfinder is not enabled for {site_dir}, so no hook runs; "
                       "run python -m epfinder install first")
    config = dict(env["_config"])
    known = {hook["id"] for hook in _report.plan(env)[0]}
    note = "" if hook_id in known or any(c in hook_id for c in "*?[") else " (no such hook is installed now)"
    if args.action == "disable":
        config[f"startup.disable.{hook_id}"] = "1"
        message = f"disabled {hook_id}{note}"
    elif args.action == "enable":
        was = config.pop(f"startup.disable.{hook_id}", None)
        message = f"enabled {hook_id}{note}" if was else f"{hook_id} was not disabled{note}"
        patterns = [k[16:] for k, v in config.items() if k.startswith("startup.disable.") and v == "1"]
        pattern = _report._pattern(hook_id, patterns)
        if pattern is not None:
            message += (f"; it is still disabled by the pattern {pattern!r} "
                        f"(python -m epfinder startup enable '{pattern}')")
    else:
        key = f"startup.priority.{hook_id}"
        if priority == "default":
            config.pop(key, None)
            message = f"{hook_id} runs at the priority its name gives{note}"
        else:
            config[key] = str(int(priority))
            message = f"{hook_id} runs at priority {int(priority)}{note}"
    _write_config(site_dir, config)
    _say(f"epfinder: {message}")
    return 0


def _measure(env: dict[str, Any], quiet: bool = False) -> int | None:
    """Start one interpreter with EPFINDER_TRACE=1, which runs the hooks and records their cost."""
    import subprocess

    environ = dict(os.environ, EPFINDER_TRACE="1")
    try:
        # install measures on its own initiative: a hook that hangs must not hang install with it.
        proc = subprocess.run([sys.executable, "-c", "pass"], env=environ, capture_output=True, text=True,
                              timeout=60 if quiet else 600)
    except (OSError, subprocess.SubprocessError) as exc:
        if quiet:
            _say(f"  note: the hooks' cost was not measured ({exc})")
            return None
        raise _Failure(f"cannot start {sys.executable} to measure the hooks: {exc}") from None
    for line in proc.stderr.splitlines():
        if not quiet and line.startswith("epfinder: startup hook "):
            _say(f"  {line}")
    return proc.returncode


def _startup_list(args: argparse.Namespace) -> int:
    if args.all or args.time:
        return _startup_list_all(args)
    env = _report.environment()
    if args.measure:
        if env["state"] in ("not_installed", "not_enabled"):
            raise _Failure(f"epfinder is not enabled for {env['site_dir']}, so no hook runs to measure")
        _measure(env)
    hooks, problems = _report.plan(env)
    costs = _startup_costs.read(env["site_dir"])
    rows = _report.hook_rows(env, hooks, costs)
    summary = _report.hooks_summary(env, rows, problems, costs)
    if args.json:
        _print_json({"command": "startup list", "environment": _report.public(env), "startup_hooks": summary,
                     "hooks": rows})
        return 0
    _say(f"startup hooks for {env['site_dir']}: {summary['message']}")
    table = [("#", "id", "priority", "distribution", "value", "last cost", "state")] + [
        (str(r["order"]), r["id"], f"{r['priority']} ({r['priority_source']})",
         f"{r['distribution']}=={r['version']}", r["value"],
         "-" if r["last_import_ms"] is None else f"{r['last_import_ms'] + r['last_call_ms']:.1f} ms"
         + ("" if r["last_outcome"] == "ok" else f" ({r['last_outcome']})"),
         r["message"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table if rows else ():
        _say("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for directory in dict.fromkeys(r["site_dir"] for r in rows):
        _say(f"  from {directory}")
    if any(r["state"] == "runs" for r in rows):
        if costs is None:
            _say("  last cost: not measured yet; python -m epfinder startup list --measure runs them once to "
                 "measure (so does any start with EPFINDER_TRACE=1)")
        else:
            _say(f"  last cost: measured {_ago(costs['measured_ns'])} by a start with EPFINDER_TRACE=1 "
                 "(import and call; --measure measures again)")
    for problem in problems:
        _say(f"  problem: {problem}")
    return 0


_KINDS = {"pth_path": ".pth path", "pth_import": ".pth import", "start_entry": ".start entry",
          "sitecustomize": "sitecustomize", "usercustomize": "usercustomize", "epfinder_hook": "hook"}


def _startup_list_all(args: argparse.Namespace) -> int:
    from . import _audit

    env = _report.environment()
    enabled = env["state"] == "enabled"
    items = _audit.audit(list(args.sys_path), env["_config"], enabled)
    if args.time:
        _audit.measure(items, list(args.sys_path))
    running = [i for i in items if i["runs_code"] and not i["disabled_by"]]
    unowned = [i for i in running if i["owner"]["state"] == "no_owner"]
    if args.json:
        _print_json({"command": "startup list --all", "environment": _report.public(env),
                     "runs_code": len(running), "no_owner": len(unowned), "items": items})
        return 0
    _say(f"at each start of {sys.executable}: {len(running)} item(s) run code, "
         f"{len(unowned)} with no owner (in the order site runs them)")
    for item in items:
        owner = item["owner"]
        who = ("not installed by any distribution" if owner["state"] == "no_owner" else
               f"{owner['distribution']}" + (f" {owner['version']}" if owner["version"] else "")
               + (", modified since install" if owner["state"] == "modified" else ""))
        where = f"{item['file']}:{item['line']}" if item["line"] else (item["file"] or item["site_dir"] or "")
        skipped = [flag for flag, runs in item["runs_under"].items() if not runs and flag != "-S"]
        cost = "" if item.get("cost_ms") is None else f"  {item['cost_ms']:.2f} ms"
        label = f"{item['order']:>3}. {_KINDS[item['kind']]:<13}"
        if item["kind"] in ("sitecustomize", "usercustomize") and not item["file"]:
            _say(f"{label} none found")
            continue
        _say(f"{label} {item['code']}{cost}")
        _say(f"       {where}  [{who}]" + (f"  (not under {' '.join(skipped)})" if skipped else "")
             + ("  (again: site processes a venv's site-packages twice before 3.15)" if item["again"] else "")
             + (f"  (disabled: {item['disabled_by']})" if item["disabled_by"] else ""))
    return 0


_COMMANDS = {
    "install": _cmd_install,
    "uninstall": _cmd_uninstall,
    "refresh": _cmd_refresh,
    "status": _cmd_status,
    "verify": _cmd_verify,
    "startup": _cmd_startup,
}

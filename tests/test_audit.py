"""`startup list --all`: everything that runs code at start, in the order it really runs, with owners.

A real venv holds setuptools' .pth, an editable install's .pth, a .pth no distribution installed,
an installed .pth modified since, a sitecustomize.py and epfinder hooks (and a .start file on
3.15+). Each item that runs code appends to a log; the order the tool lists must be the order of
the log, and the owners must be what RECORD says.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from helpers import clean_env, make_wheel, run, write_tree

pytestmark = pytest.mark.slow

LOGGER = "import os\ndef log(what):\n    with open(os.environ['AUDIT_LOG'], 'a') as f:\n        f.write(what + '\\n')\n"


@pytest.fixture
def audited(venv, tmp_path, wheelhouse):
    env = clean_env(tmp_path, PIP_FIND_LINKS=str(wheelhouse), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                    AUDIT_LOG=str(tmp_path / "log"))
    site = Path(venv.site)

    def sh(*args, cwd=None):
        return run(venv.python, *args, tmp_path=tmp_path, env=env, cwd=cwd)

    sh("-m", "pip", "install", "-q", "setuptools>=77")
    project = write_tree(tmp_path / "edpkg", {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n'
                          '[project]\nname = "edpkg"\nversion = "1.0"\n',
        "src/edpkg/__init__.py": "",
    })
    sh("-m", "pip", "install", "-q", "-e", ".", cwd=project)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    owned = make_wheel(wheels, "ownedpth", "1.0", modules={
        "audit_logger.py": LOGGER,
        "owned.pth": "import audit_logger; audit_logger.log('owned.pth')\n",
        "hookpkg.py": "import audit_logger\ndef first():\n    audit_logger.log('hook first')\n"
                      "def second():\n    audit_logger.log('hook second')\n",
    }, entry_points="[epfinder.startup]\n100-first = hookpkg:first\n900-second = hookpkg:second\n")
    sh("-m", "pip", "install", "-q", str(owned))
    with open(site / "owned.pth", "a") as f:
        f.write("# edited by hand after the install\n")
    write_tree(site, {
        "zz-unowned.pth": "import audit_logger; audit_logger.log('zz-unowned.pth')\n",
        "sitecustomize.py": "import audit_logger\naudit_logger.log('sitecustomize')\n",
    })
    if sys.version_info >= (3, 15):
        write_tree(site, {"audit_start.py": "import audit_logger\ndef go():\n    audit_logger.log('start entry')\n",
                          "zz-later.start": "audit_start:go\n"})
    sh("-m", "epfinder", "install")
    return venv, sh, tmp_path / "log"


def test_the_listed_order_is_the_order_things_run(audited):
    venv, sh, log = audited
    if log.exists():
        log.unlink()
    sh("-c", "pass")
    ran = log.read_text().splitlines()
    if sys.version_info >= (3, 15):
        # Every .pth import line, then the .start entries, then sitecustomize.
        expected_run = ["owned.pth", "zz-unowned.pth", "start entry"]
    else:
        # site.venv() processes the venv's site-packages, then addsitepackages() does it again.
        expected_run = ["owned.pth", "zz-unowned.pth"] * 2
    expected_run += ["sitecustomize", "hook first", "hook second"]
    assert ran == expected_run, ran

    report = json.loads(sh("-m", "epfinder", "startup", "list", "--all", "--json").stdout)
    assert report["schema_version"] == 1 and report["command"] == "startup list --all"
    items = report["items"]
    assert [i["order"] for i in items] == list(range(1, len(items) + 1))
    for item in items:
        assert set(item) >= {"order", "kind", "file", "line", "code", "site_dir", "runs_code", "runs_under",
                             "disabled_by", "again", "owner"}
        assert item["kind"] in ("pth_path", "pth_import", "start_entry", "sitecustomize", "usercustomize",
                                "epfinder_hook")
        assert set(item["runs_under"]) == {"-I", "-E", "-s", "-S"} and item["runs_under"]["-S"] is False

    def label(item):
        if item["kind"] == "pth_import" and "audit_logger" in item["code"]:
            return os.path.basename(item["file"])
        if item["kind"] == "sitecustomize" and item["file"]:
            return "sitecustomize"
        if item["kind"] == "start_entry" and "audit_start" in item["code"]:
            return "start entry"
        if item["kind"] == "epfinder_hook":
            return f"hook {item['code'].rpartition(':')[2]}"
        return None

    assert [label(i) for i in items if label(i)] == expected_run

    assert any(i["again"] for i in items) == (sys.version_info < (3, 15))
    by_file = {os.path.basename(i["file"]): i for i in items if i["file"]}
    assert by_file["owned.pth"]["owner"] == {"distribution": "ownedpth", "version": "1.0", "state": "modified"}
    assert by_file["zz-unowned.pth"]["owner"]["state"] == "no_owner"
    assert by_file["sitecustomize.py"]["owner"]["state"] == "no_owner"
    assert by_file["distutils-precedence.pth"]["owner"]["distribution"] == "setuptools"
    assert by_file["distutils-precedence.pth"]["owner"]["state"] == "installed"
    editable = [i for i in items if "__editable__" in (i["file"] or "")]
    assert editable and all(i["owner"]["distribution"] == "edpkg" for i in editable)
    assert by_file["epfinder.pth"]["owner"]["distribution"] == "importlib-metadata-cache"
    # zz-unowned.pth (twice before 3.15), sitecustomize.py, and on 3.15 the .start file
    assert report["no_owner"] == (2 if sys.version_info >= (3, 15) else 3) + (sys.version_info >= (3, 15))

    text = sh("-m", "epfinder", "startup", "list", "--all").stdout
    assert "not installed by any distribution" in text and "modified since install" in text

    timed = json.loads(sh("-m", "epfinder", "startup", "list", "--all", "--time", "--json").stdout)["items"]
    running = [i for i in timed if i["runs_code"] and not i["disabled_by"]]
    assert running and all(isinstance(i["cost_ms"], float) for i in running), running
    assert "at start:" in sh("-m", "epfinder", "status").stdout

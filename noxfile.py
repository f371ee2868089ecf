"""Test sessions: the suite on every supported CPython (3.10-3.13 from pyenv, 3.14 and 3.15 from
tools/provide-pythons; ./run-tests puts both on PATH)."""

import nox

nox.options.sessions = ["tests", "docs", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]


@nox.session(python=PYTHONS)
def tests(session):
    # A real wheel, as users get it, not the source tree.
    # uv: the workflow tests install with it as users do.
    session.install(".", "pytest>=7", "hypothesis>=6", "uv")
    session.run("pytest", *session.posargs)


# The documentation site is built on 3.13, as before 3.14 and 3.15 joined the matrix.
@nox.session(python="3.13")
def docs(session):
    # The documentation site; --strict turns every warning (a broken link or anchor) into a failure.
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "--site-dir", "build/site")


@nox.session(python="3.13")
def lint(session):
    # ruff's default rules (pyproject.toml): syntax errors, undefined and unused names.
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python="3.13")
def typecheck(session):
    # mypy over src/ (pyproject.toml); the package ships py.typed.
    session.install("mypy")
    session.run("mypy")

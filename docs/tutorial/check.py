"""Run the docs' tutorial on a site that is not this repository, from the built wheel.

Builds the sdist and wheel, checks what the wheel holds, makes a fresh virtualenv, installs
the wheel, runs ``django-admin startproject`` and then the tutorial's steps with the files
under docs/tutorial/site/ (the pages include the same files, so the two cannot drift):
``check`` (and ``check --deploy`` with the production profile), ``migrate``, uvicorn, a chat
through local Telegram's user API (docs/tutorial/walk.py), the playground and its static
files, and the tutorial's own test with ``botdialogs.testing``.

    .venv/bin/python docs/tutorial/check.py [--keep DIR]

pip's cache makes a second run fast; the packages come from the registry, as for a user.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SITE_FILES = REPO / "docs" / "tutorial" / "site"
WALK = REPO / "docs" / "tutorial" / "walk.py"
#: What the wheel must hold besides Python modules (the issue's list: templates, static
#: files, migrations, py.typed, local Telegram's too) and botdialogs' compiled catalogs.
REQUIRED = [
    "botdialogs/py.typed",
    "botdialogs/migrations/0001_initial.py",
    "botdialogs/localtg/migrations/0001_initial.py",
    "botdialogs/templates/botdialogs/monitor.html",
    "botdialogs/static/botdialogs/monitor.js",
    "botdialogs/localtg/templates/localtg/chat.html",
    "botdialogs/localtg/static/localtg/chat.js",
    "botdialogs/localtg/static/localtg/playground.css",
    "botdialogs/locale/de/LC_MESSAGES/django.mo",
    "botdialogs/locale/ru/LC_MESSAGES/django.mo",
]


STARTED = time.monotonic()
#: Byte-compiling every installed module is most of an install's CPU; Python compiles what a
#: run imports anyway. pip's cache (downloads and built wheels) is used as for any user.
PIP_QUIET = ("--quiet", "--no-compile", "--disable-pip-version-check")


def step(title: str) -> None:
    print(f"== {time.monotonic() - STARTED:5.0f} s  {title}", flush=True)


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command``; its output is printed only when it fails."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"failed ({done.returncode}): {' '.join(map(str, command))}")
    return done.stdout + done.stderr


def build(work: Path) -> Path:
    step("python -m build (sdist + wheel)")
    dist = work / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, REPO, cwd=REPO)
    [wheel] = dist.glob("botdialogs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    extra = {top for top in tops if top != "botdialogs" and not top.endswith(".dist-info")}
    missing = [name for name in REQUIRED if name not in names]
    if extra or missing:
        raise SystemExit(f"wheel: unexpected top-level {sorted(extra)}, missing {missing}")
    print(f"   {wheel.name}: {len(names)} files, botdialogs only")
    return wheel


def copy_site_files(site: Path) -> None:
    """The tutorial's files, as its pages show them."""
    for source in SITE_FILES.rglob("*"):
        if not source.is_file() or "__pycache__" in source.parts:
            continue
        target = site / source.relative_to(SITE_FILES)
        if source.name == "botdialogs_settings.py":
            continue  # appended to settings.py instead
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    settings = site / "mysite" / "settings.py"
    addition = (SITE_FILES / "mysite" / "botdialogs_settings.py").read_text()
    settings.write_text(settings.read_text() + "\n" + addition)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_server(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"uvicorn did not answer {url} within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="botdialogs-tutorial-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    started = time.monotonic()
    try:
        check(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"tutorial: every step passed in {time.monotonic() - started:.0f} s")


def check(work: Path) -> None:
    wheel = build(work)
    venv = work / "venv"
    bin_dir = venv / "bin"
    python = bin_dir / "python"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV"}
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    step("a fresh virtualenv with the wheel alone (no extras)")
    run(sys.executable, "-m", "venv", venv, cwd=work)
    run(python, "-m", "pip", "install", *PIP_QUIET, wheel, cwd=work, env=env)

    step("tutorial 1: django-admin startproject mysite")
    run(bin_dir / "django-admin", "startproject", "mysite", cwd=work, env=env)
    site = work / "mysite"
    run(python, "manage.py", "startapp", "pizza", cwd=site, env=env)
    copy_site_files(site)

    step("bad input: the playground without the [channels] extra fails the check, naming it")
    failed = subprocess.run(
        [python, "manage.py", "check"], cwd=site, env=env, capture_output=True, text=True
    )
    if failed.returncode == 0 or "botdialogs[channels]" not in failed.stdout + failed.stderr:
        raise SystemExit(f"expected the check to name the extra:\n{failed.stderr}")

    step('tutorial 1: pip install "botdialogs[channels,testing]" pytest-django')
    run(
        python, "-m", "pip", "install", *PIP_QUIET,
        f"botdialogs[channels,testing] @ {wheel.as_uri()}", "pytest-django",
        cwd=work, env=env,
    )  # fmt: skip

    step("tutorial 2: manage.py check, makemigrations, migrate")
    run(python, "manage.py", "check", "--fail-level", "WARNING", cwd=site, env=env)
    run(python, "manage.py", "makemigrations", "pizza", cwd=site, env=env)
    run(python, "manage.py", "migrate", cwd=site, env=env)

    step("tutorial 8: check --deploy with the production profile")
    production = {
        **env,
        "DJANGO_SETTINGS_MODULE": "mysite.settings_production",
        "SECRET_KEY": "tutorial-" + "x" * 60,
        "ALLOWED_HOSTS": "bot.example.com",
        "TELEGRAM_WEBHOOK_SECRET": "tutorial-secret",
    }
    run(
        python, "manage.py", "check", "--deploy", "--fail-level", "WARNING",
        cwd=site, env=production,
    )  # fmt: skip

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    step(f"tutorial 3: uvicorn mysite.asgi:application on {url}")
    server_env = {**env, "LOCAL_TELEGRAM_URL": url}
    log = (work / "uvicorn.log").open("wb")
    server = subprocess.Popen(
        [bin_dir / "uvicorn", "mysite.asgi:application", "--port", str(port)],
        cwd=site,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_server(f"{url}/localtg/", server)
        step("tutorial 3-6: the dialog, a timer, a signal, nodes, the playground (walk.py)")
        print(run(python, WALK, url, cwd=site, env=server_env), end="")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        if server.returncode not in (0, -15):
            print((work / "uvicorn.log").read_text())

    step("tutorial 7: the bot's own test with botdialogs.testing (pytest)")
    print(run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=site, env=env)[-300:])


if __name__ == "__main__":
    main()

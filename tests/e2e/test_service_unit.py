"""The listener's systemd unit, and the .deb that installs it (disabled) with its user and
environment file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from admin_app.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "billing-admin-listen.service"
INSTALLED_BINARY = "/opt/billing-admin/billing-admin"


def _directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every line; systemd allows a key more than once."""
    found: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key, value))
    return found


def test_the_unit_runs_the_listener_as_its_own_user_from_the_environment_file() -> None:
    directives = _directives(UNIT.read_text())
    service = {(k, v) for s, k, v in directives if s == "Service"}
    assert ("EnvironmentFile", "/etc/billing-admin/listen.env") in service
    assert ("User", "billing-admin") in service
    assert ("Restart", "on-failure") in service
    assert ("StandardOutput", "journal") in service
    assert ("StandardError", "journal") in service
    assert ("ExecStart", f"{INSTALLED_BINARY} listen $LISTEN_ARGS") in service
    assert ("Install", "WantedBy", "multi-user.target") in directives
    # The default arguments are ones `admin-app listen` accepts.
    (default,) = [v for k, v in service if k == "Environment" and "LISTEN_ARGS" in v]
    args = build_parser().parse_args(["listen", *default.strip('"').split("=", 1)[1].split()])
    assert args.stripe_cli
    assert args.health_port == 8642


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: stand one in for the installed app.
    binary = tmp_path / "billing-admin"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(binary)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    # A bad value is only a warning (exit 0): any output at all is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""

    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert "Failed to parse service restart specifier" in result.stderr


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is missing")
def test_the_deb_installs_the_unit_disabled_with_its_user_and_environment_file(
    tmp_path: Path,
) -> None:
    app = tmp_path / "billing-admin"
    app.mkdir()
    (app / "billing-admin").write_text("#!/bin/sh\n")
    (app / "billing-admin").chmod(0o755)
    (app / "VERSION").write_text("0.0.1\n")
    result = subprocess.run(
        ["packaging/build-deb.sh"], cwd=REPO, env={"BILLING_ADMIN_DIST": str(tmp_path),
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deb = Path(result.stdout.strip())
    assert deb.parent == tmp_path
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    files = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
    assert files["./lib/systemd/system/billing-admin-listen.service"] == "-rw-r--r--"
    assert files["./etc/billing-admin/listen.env"] == "-rw-r-----"
    assert "./usr/lib/sysusers.d/billing-admin.conf" in files
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/billing-admin/listen.env"]
    postinst = (control / "postinst").read_text()
    for script in ("postinst", "prerm", "postrm"):
        subprocess.run(["sh", "-n", str(control / script)], check=True)  # parses
    assert "billing-admin" in postinst
    assert "chown root:billing-admin /etc/billing-admin/listen.env" in postinst
    # Disabled by default: the package never enables or starts it.
    for refused in ("systemctl enable", "systemctl start", "deb-systemd-helper enable",
                    "deb-systemd-invoke start"):  # fmt: skip
        assert refused not in postinst
    env_file = (REPO / "packaging" / "listen.env").read_text()
    assert "STRIPE_SECRET_KEY=\n" in env_file  # shipped empty: no secret in a package

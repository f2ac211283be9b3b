"""A real MIT Kerberos KDC in a temporary realm, for the Kerberos transport tests.

L{Realm} writes krb5.conf and kdc.conf in a temporary directory, creates the
database, principals and a keytab with kdb5_util and kadmin.local, starts
krb5kdc in the foreground on a free port of 127.0.0.1, and gets tickets with
kinit. L{missing} names the programs that are not installed (Debian: krb5-kdc,
krb5-admin-server, krb5-user) so that tests can skip with a clear reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from lbtx.testing.ports import free_port

REALM = "LBTX.TEST"
PROGRAMS = ["krb5kdc", "kdb5_util", "kadmin.local", "kinit"]
_SBIN = ["/usr/sbin", "/usr/local/sbin", "/sbin"]


def which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(_SBIN))


def missing() -> list[str]:
    """The KDC programs that cannot be found."""
    return [p for p in PROGRAMS if which(p) is None]


class Realm:
    """A running KDC for L{REALM} under C{root}; C{env} is what Kerberos clients need."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.krb5_conf = root / "krb5.conf"
        self.kdc_conf = root / "kdc.conf"
        self.krb5_conf.write_text(
            f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
            f" rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n"
            f"[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n"
            f"[domain_realm]\n localhost = {REALM}\n")
        self.kdc_conf.write_text(
            f"[kdcdefaults]\n kdc_ports = {self.port}\n kdc_tcp_ports = {self.port}\n"
            f"[realms]\n {REALM} = {{\n  database_name = {root}/principal\n"
            f"  key_stash_file = {root}/stash\n  acl_file = {root}/kadm5.acl\n"
            f"  kdc_ports = {self.port}\n  kdc_tcp_ports = {self.port}\n }}\n"
            f"[logging]\n kdc = FILE:{root}/kdc.log\n")
        (root / "kadm5.acl").write_text("")
        self.env = {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf),
                    "KRB5RCACHETYPE": "none"}
        self._run("kdb5_util", "create", "-s", "-r", REALM, "-P", "master-password")
        self._kdc = subprocess.Popen([which("krb5kdc"), "-n", "-r", REALM], env=self._environ(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_kdc()

    def _environ(self) -> dict:
        return {**os.environ, **self.env}

    def _run(self, program: str, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([which(program), *args], env=self._environ(), input=stdin,
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def _wait_for_kdc(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._kdc.poll() is not None:
                raise RuntimeError(f"krb5kdc exited with {self._kdc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("krb5kdc did not start listening")

    def add_user(self, name: str, password: str) -> str:
        """Create C{name@REALM} with C{password}; the principal is returned."""
        self._run("kadmin.local", "-r", REALM, "-q", f"addprinc -pw {password} {name}")
        return f"{name}@{REALM}"

    def add_service(self, service: str, host: str, keytab: Path) -> str:
        """Create C{service/host@REALM} with a random key written to C{keytab}."""
        principal = f"{service}/{host}"
        self._run("kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {principal}")
        self._run("kadmin.local", "-r", REALM, "-q", f"ktadd -k {keytab} {principal}")
        return f"{principal}@{REALM}"

    def kinit(self, principal: str, password: str, ccache: Path) -> None:
        """Get a ticket-granting ticket for C{principal} into C{ccache}."""
        self._run("kinit", "-c", f"FILE:{ccache}", principal, stdin=password + "\n")

    def stop(self) -> None:
        """Stop the KDC we started."""
        self._kdc.terminate()
        try:
            self._kdc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kdc.kill()
            self._kdc.wait()

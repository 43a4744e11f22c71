"""Certificates for tests of TLS to NATS: a CA of their own and certificates it signs, laid
out as cert-manager lays out a certificate's Secret (``ca.crt``, ``tls.crt``, ``tls.key``).

Made with the ``openssl`` command; a test without it is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str, cwd: Path) -> None:
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("openssl is not installed: no certificates for TLS to NATS")
    subprocess.run([found, *args], cwd=cwd, check=True, capture_output=True)


def certificate_authority(directory: Path, name: str = "agora-nats-ca") -> Path:
    """A self-signed CA, valid two days: ``ca.crt`` and ``ca.key`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl(
        "req", "-x509", *_CURVE, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", f"/CN={name}", cwd=directory,
    )  # fmt: skip
    return directory


def issue(
    directory: Path,
    ca: Path,
    *,
    common_name: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    usages: Sequence[str] = ("serverAuth", "clientAuth"),
) -> Path:
    """A certificate the CA in ``ca`` signs for these names: ``tls.crt``, ``tls.key`` and the
    CA's ``ca.crt`` in ``directory``, as in the Secret cert-manager writes."""
    directory.mkdir(parents=True, exist_ok=True)
    alternatives = ",".join([*(f"DNS:{n}" for n in dns_names), *(f"IP:{a}" for a in ip_addresses)])
    (directory / "ext.cnf").write_text(
        f"subjectAltName={alternatives}\nextendedKeyUsage={','.join(usages)}\n"
    )
    openssl(
        "req", *_CURVE, "-keyout", "tls.key", "-out", "tls.csr", "-subj", f"/CN={common_name}",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "tls.csr", "-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"),
        "-CAcreateserial", "-out", "tls.crt", "-days", "2", "-extfile", "ext.cnf",
        cwd=directory,
    )  # fmt: skip
    if directory.resolve() != ca.resolve():
        shutil.copyfile(ca / "ca.crt", directory / "ca.crt")
    return directory

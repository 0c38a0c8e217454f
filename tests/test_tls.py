"""``rpcgw cert`` and ``rpcgw serve --tls-cert``: certificates clients accept, over real TLS.

The serving tests run ``python -m rpcgw.cli serve`` as a subprocess, exactly as an
operator would, and talk to it with Python's ssl module trusting only the CA that
``rpcgw cert`` made (and with CALLR's own Python SDK, through ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import queue
import re
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import callr
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from rpcgw import tls
from rpcgw.cli import main

from .conftest import free_port

ADMIN_PASSWORD = "tls-admin-password-1"
LISTENING = re.compile(r"rpcgw listening on (https?)://(\S+?)/json-rpc/v1\.1/")


def make_certs(directory: Path, *names: str) -> tuple[Path, Path, Path]:
    assert main(["cert", "--dir", str(directory), *names]) == 0
    return directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"


@contextmanager
def serve(tmp_path: Path, *args: str, expect: int = 1) -> Iterator[dict[str, str]]:
    """Run ``rpcgw serve`` until the block ends; yields {scheme: base URL}.

    Reads the "rpcgw listening on ..." lines the command prints once it accepts requests
    (``expect`` of them), so no port is guessed and no sleep is needed.
    """
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RPCGW_")},
           "RPCGW_ADMIN_PASSWORD": ADMIN_PASSWORD, "RPCGW_SIMULATED_MODEMS": "0",
           "RPCGW_SQLITE_SYNCHRONOUS": "NORMAL", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "rpcgw.cli", "serve",
               "--database", f"sqlite:///{tmp_path}/tls.db", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env, text=True, cwd=Path(__file__).resolve().parent.parent)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    urls: dict[str, str] = {}
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while len(urls) < expect:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("rpcgw serve did not start:\n" + "".join(seen)) from None
            if line is None:
                raise AssertionError("rpcgw serve exited:\n" + "".join(seen))
            seen.append(line)
            match = LISTENING.search(line)
            if match:
                urls[match.group(1)] = f"{match.group(1)}://{match.group(2)}/json-rpc/v1.1/"
        yield urls
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def rpc_call(url: str, method: str, *params: Any, context: ssl.SSLContext | None = None,
             password: str = ADMIN_PASSWORD) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)})
    auth = base64.b64encode(f"admin:{password}".encode()).decode()
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        answer = json.loads(response.read())
    assert answer["id"] == 7, answer
    return answer["result"]


def test_cert_makes_a_ca_and_a_server_certificate_for_names_and_addresses(
        tmp_path: Path) -> None:
    ca_path, cert_path, key_path = make_certs(tmp_path / "certs", "localhost", "127.0.0.1",
                                              "gw.example.org", "::1")
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "gw.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    now = dt.datetime.now(dt.timezone.utc)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now <= dt.timedelta(days=tls.SERVER_DAYS)
    # Private keys are readable by their owner only.
    for key in (key_path, tmp_path / "certs" / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644


def test_a_second_run_reuses_the_ca_and_reissues_the_server_certificate(
        tmp_path: Path) -> None:
    ca_path, cert_path, _ = make_certs(tmp_path, "localhost")
    ca_before, cert_before = ca_path.read_bytes(), cert_path.read_bytes()
    make_certs(tmp_path, "gw.example.org")
    assert ca_path.read_bytes() == ca_before
    assert cert_path.read_bytes() != cert_before
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.example.org"]


def test_cert_refuses_what_is_not_a_host_name_or_an_address(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cert", "--dir", str(tmp_path), "not a host!"]) == 2
    assert "not a host name or an IP address" in capsys.readouterr().err
    assert not (tmp_path / "ca.pem").exists()


def test_cert_refuses_a_ca_key_that_does_not_match(tmp_path: Path) -> None:
    make_certs(tmp_path / "a", "localhost")
    make_certs(tmp_path / "b", "localhost")
    (tmp_path / "a" / "ca-key.pem").write_bytes((tmp_path / "b" / "ca-key.pem").read_bytes())
    assert main(["cert", "--dir", str(tmp_path / "a"), "localhost"]) == 2


def test_serve_speaks_https_with_the_certificate(tmp_path: Path) -> None:
    ca_path, cert_path, key_path = make_certs(tmp_path / "certs", "localhost", "127.0.0.1")
    trusting = ssl.create_default_context(cafile=str(ca_path))
    with serve(tmp_path, "--host", "127.0.0.1", "--port", "0", "--tls-cert", str(cert_path),
               "--tls-key", str(key_path)) as urls:
        assert set(urls) == {"https"}
        url = urls["https"]
        assert isinstance(rpc_call(url, "system.get_timestamp", context=trusting), int)
        # The same URL under the host name the certificate also names.
        by_name = url.replace("127.0.0.1", "localhost")
        assert isinstance(rpc_call(by_name, "system.get_timestamp", context=trusting), int)
        # Without trusting the CA, verification fails: the certificate is not public.
        with pytest.raises(urllib.error.URLError) as info:
            rpc_call(url, "system.get_timestamp", context=ssl.create_default_context())
        assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


def test_a_name_the_certificate_does_not_carry_is_refused(tmp_path: Path) -> None:
    ca_path, cert_path, key_path = make_certs(tmp_path / "certs", "gw.example.org")
    trusting = ssl.create_default_context(cafile=str(ca_path))
    with serve(tmp_path, "--port", "0", "--tls-cert", str(cert_path),
               "--tls-key", str(key_path)) as urls:
        with pytest.raises(urllib.error.URLError) as info:
            rpc_call(urls["https"], "system.get_timestamp", context=trusting)
        assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
        assert "127.0.0.1" in str(info.value.reason)


def test_tls_port_serves_https_beside_plain_http_and_callr_sdk_trusts_the_ca(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca_path, cert_path, key_path = make_certs(tmp_path / "certs", "127.0.0.1")
    # --tls-port 0 means "HTTPS replaces HTTP" (the tls_port setting), so name a port.
    with serve(tmp_path, "--port", "0", "--tls-port", str(free_port()), "--tls-cert",
               str(cert_path),
               "--tls-key", str(key_path), expect=2) as urls:
        assert urls["http"].startswith("http://127.0.0.1:")
        assert isinstance(rpc_call(urls["http"], "system.get_timestamp"), int)
        # CALLR's Python SDK, unchanged, over HTTPS: it uses urllib's default context,
        # which OpenSSL points at SSL_CERT_FILE.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_path))
        api = callr.Api("admin", ADMIN_PASSWORD)
        api.set_api_url(urls["https"])
        sms_hash = api.call("sms.send", "", "+33612345678", "over TLS", None)
        assert api.call("sms.get", sms_hash)["text"] == "over TLS"

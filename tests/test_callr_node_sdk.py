"""CALLR's Node SDK (npm ``callr`` 1.2.0), unchanged, against rpcgw over HTTPS.

That SDK always uses https and forces port 443 (notes/callr.md §1.2), so the test runs
``rpcgw serve`` on port 443 of a loopback address of its own (127.x.y.z; binding 443
needs root or CAP_NET_BIND_SERVICE, which CI has) with a certificate from ``rpcgw cert``
for that address, and node trusts rpcgw's CA through ``NODE_EXTRA_CA_CERTS``.  Nothing
in the SDK is patched: the harness only sets ``api.apiUrl``, as its README says.

The package comes from the npm registry once and is kept in ``.cache/npm-callr`` under
the repository (git-ignored); later runs reuse it.

The harness runs the calls of ``STEPS`` one after another and records every callback
the SDK fires, because on a non-200 answer it fires the error callback twice (first
HTTP_CODE_ERROR, then the error from the body).  It knows a call is over when the
response has ended (it watches ``https.request``, which the SDK looks up at call time),
not after a sleep.  To cover another method, add one line to ``STEPS`` and assert on
its callbacks.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rpcgw import tls

from .test_tls import ADMIN_PASSWORD, serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NPM_CACHE = ROOT / ".cache" / "npm-callr"
SDK_VERSION = "1.2.0"

HARNESS = r'''
"use strict";
const https = require("https");
const callr = require("callr");

// Resolves when the SDK's current request has ended (after its own 'end' handler ran),
// or failed; the SDK calls https.request once per call.
let done = null;
const request = https.request;
https.request = function (...args) {
  const req = request.apply(this, args);
  done = new Promise((resolve) => {
    req.on("response", (res) => res.on("end", () => setImmediate(resolve)));
    req.on("error", () => setImmediate(resolve));
  });
  return req;
};

function describe(error) {
  return { message: error.message, code: error.code,
           data: error.data && error.data.exception ? String(error.data.exception) : error.data };
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const results = {};
  for (const step of cfg.steps) {
    const api = new callr.api(cfg.login, step.password ?? cfg.password);
    api.apiUrl = cfg.url;
    // "$name" stands for the result of an earlier step (sms.get of the hash sent).
    const params = step.params.map((p) =>
      typeof p === "string" && p.startsWith("$") ? results[p.slice(1)][0].result : p);
    const callbacks = [];
    api.call(step.method, ...params)
      .success((result) => callbacks.push({ kind: "success", result }))
      .error((error) => callbacks.push({ kind: "error", ...describe(error) }));
    await done;
    results[step.name] = callbacks;
  }
  console.log(JSON.stringify(results));
}

main().catch((error) => { console.error(error); process.exit(1); });
'''

#: (name, method, params, password override or None): the calls the harness makes.
STEPS: list[tuple[str, str, list[Any], str | None]] = [
    ("send", "sms.send", ["SMS", "+33612345678", "Hello from Node", {"user_data": "42"}], None),
    ("get", "sms.get", ["$send"], None),
    ("timestamp", "system.get_timestamp", [], None),
    ("subscribe", "webhooks.subscribe",
     ["sms.mt.status_update", "https://example.org/hook", None], None),
    ("subscribe_again", "webhooks.subscribe",
     ["sms.mt.status_update", "https://example.org/hook", None], None),
    ("not_found", "sms.get", ["ZZZZZZZZ"], None),
    ("invalid_to", "sms.send", ["", "12", "x", None], None),
    ("bad_password", "sms.send", ["", "+33612345678", "x", None], "not-the-password"),
]


def sdk_dir() -> Path:
    """The npm package, installed into the repository's cache once."""
    package = NPM_CACHE / "node_modules" / "callr" / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == SDK_VERSION:
        return NPM_CACHE
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: apt-get install npm (bash scripts/test installs it)")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(NPM_CACHE),
         f"callr@{SDK_VERSION}"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and package.exists(), (
        f"npm install callr@{SDK_VERSION} failed (the npm registry must be reachable):\n"
        + done.stdout + done.stderr)
    return NPM_CACHE


def loopback_address_with_free_443() -> str:
    """A 127.x.y.z nobody listens on at 443, so parallel runs do not collide."""
    rng = random.Random(os.getpid())
    for _ in range(50):
        address = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((address, 443))
            except PermissionError:
                pytest.fail("binding port 443 needs root or CAP_NET_BIND_SERVICE "
                            "(CI runs as root); CALLR's Node SDK connects to 443 only")
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return address
    raise AssertionError("no free loopback address for port 443")


def run_harness(tmp_path: Path, url: str, ca: Path) -> dict[str, list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: apt-get install nodejs")
    harness = tmp_path / "harness.cjs"
    harness.write_text(HARNESS)
    config = {"url": url, "login": "admin", "password": ADMIN_PASSWORD,
              "steps": [{"name": name, "method": method, "params": params,
                         **({"password": password} if password else {})}
                        for name, method, params, password in STEPS]}
    env = {**os.environ, "NODE_PATH": str(sdk_dir() / "node_modules"),
           "NODE_EXTRA_CA_CERTS": str(ca)}
    env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)
    done = subprocess.run([node, str(harness), json.dumps(config)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    results: dict[str, list[dict[str, Any]]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def test_callr_node_sdk_unchanged_over_https_on_443(tmp_path: Path) -> None:
    sdk_dir()  # install (once) before the server starts, so its time is not a server's
    address = loopback_address_with_free_443()
    cert, key, _ = tls.make_certificates(tmp_path / "certs", [address, "localhost"])
    ca = tmp_path / "certs" / "ca.pem"
    with serve(tmp_path, "--host", address, "--port", "443", "--tls-cert", str(cert),
               "--tls-key", str(key)) as urls:
        assert urls["https"] == f"https://{address}:443/json-rpc/v1.1/"
        results = run_harness(tmp_path, f"https://{address}/json-rpc/v1.1/", ca)

    # sms.send: the success callback gets the hash, once.
    [sent] = results["send"]
    assert sent["kind"] == "success" and len(sent["result"]) == 8
    # sms.get: the SMS object.
    [got] = results["get"]
    assert got["kind"] == "success"
    sms = got["result"]
    assert sms["hash"] == sent["result"] and sms["from"] == "SMS"
    assert sms["to"] == "+33612345678" and sms["text"] == "Hello from Node"
    assert sms["user_data"] == "42" and sms["type"] == "OUT"
    [timestamp] = results["timestamp"]
    assert timestamp["kind"] == "success" and isinstance(timestamp["result"], int)
    # webhooks.subscribe returns the Webhook object; the same again is CALLR's duplicate.
    [hook] = results["subscribe"]
    assert hook["kind"] == "success" and len(hook["result"]["hash"]) == 8
    assert hook["result"]["type"] == "sms.mt.status_update"
    assert [(e["kind"], e["message"], e["code"]) for e in results["subscribe_again"]] == [
        ("error", "TYPE_ENDPOINT_DUPLICATE", 120)]
    # Application errors: code and message in the error callback, data null (the SDK
    # drops it), exactly once (HTTP 200).
    assert results["not_found"] == [
        {"kind": "error", "message": "NOT_FOUND", "code": 110, "data": None}]
    assert results["invalid_to"] == [
        {"kind": "error", "message": "INVALID_PARAM", "code": -32602, "data": None}]
    # Authentication failure: HTTP 401, so the SDK first reports HTTP_CODE_ERROR, then
    # the JSON-RPC error from the body.
    assert results["bad_password"] == [
        {"kind": "error", "message": "HTTP_CODE_ERROR", "code": -1, "data": {"http_code": 401}},
        {"kind": "error", "message": "AUTHENTICATION_FAILED", "code": 101, "data": None},
    ]

"""Generated clients, each run by its own toolchain against a live gateway.

For every language, the client is generated from schema/openrpc.json into a temporary
directory and a small program written against it (below, one per language, all doing
the same steps) runs with python3, node, php or go.  The gateway is a real one on a
loopback port; the program gets the URL and credentials as a JSON argument and prints
one JSON object, ``{step: {"result": ...} | {"error": {code, message, data,
http_status}}}``, which ``check()`` asserts on.  To cover a new method, add one
``step(...)`` line to each program and an assertion to ``check()``.

Toolchains come from Debian (``php-cli``, ``golang-go``; node is on the machine);
``bash scripts/test`` installs them.  A missing one fails the test with that message.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rpcgw.codegen import LANGUAGES, generate, load_contract, write_output

from .conftest import ADMIN, ALICE

pytestmark = pytest.mark.slow

HASH = re.compile(r"[0-9A-Z]{8}")

PYTHON_PROGRAM = r'''
import json
import sys

sys.path.insert(0, sys.argv[2])
from rpcgw_client import Client, RpcError  # noqa: E402

cfg = json.loads(sys.argv[1])
out = {}


def step(name, call):
    try:
        out[name] = {"result": call()}
    except RpcError as exc:
        out[name] = {"error": {"code": exc.code, "message": exc.message, "data": exc.data,
                               "http_status": exc.http_status}}
    return out[name].get("result")


alice = Client(cfg["url"], login=cfg["login"], password=cfg["password"])
sms_hash = step("send", lambda: alice.sms_send("", "+33612345678", "Hello from python",
                                               {"user_data": "42"}))
step("get", lambda: alice.sms_get(sms_hash))
key = step("api_key_create", lambda: alice.api_key_create("codegen"))
step("api_key_get", lambda: Client(cfg["url"], api_key=key["token"]).sms_get(sms_hash))
session = step("session_create", lambda: alice.session_create())
step("session_get", lambda: Client(cfg["url"], session=session["token"]).sms_get(sms_hash))
admin = Client(cfg["url"], login=cfg["admin_login"], password=cfg["admin_password"],
               login_as="user.login " + cfg["login"])
step("login_as_get", lambda: admin.sms_get(sms_hash))
step("count", lambda: alice.sms_get_count_for_body("Hello"))
step("subscribe", lambda: alice.webhooks_subscribe("sms.mo", "http://127.0.0.1:9/hook", None))
step("subscribe_again", lambda: alice.webhooks_subscribe("sms.mo", "http://127.0.0.1:9/hook"))
step("not_found", lambda: alice.sms_get("ZZZZZZZZ"))
step("invalid_to", lambda: alice.sms_send("", "12", "x"))
step("bad_password", lambda: Client(cfg["url"], login=cfg["login"],
                                    password="wrong").system_get_timestamp())
print(json.dumps(out))
'''

NODE_PROGRAM = r'''
import { Client, RpcError } from "./client/rpcgw-client.js";

const cfg = JSON.parse(process.argv[2]);
const out = {};

async function step(name, call) {
  try {
    out[name] = { result: await call() };
  } catch (error) {
    if (!(error instanceof RpcError)) throw error;
    out[name] = { error: { code: error.code, message: error.message, data: error.data,
                           http_status: error.httpStatus } };
  }
  return out[name].result;
}

const alice = new Client(cfg.url, { login: cfg.login, password: cfg.password });
const hash = await step("send", () => alice.smsSend("", "+33612345678", "Hello from node",
                                                      { user_data: "42" }));
await step("get", () => alice.smsGet(hash));
const key = await step("api_key_create", () => alice.apiKeyCreate("codegen"));
await step("api_key_get", () => new Client(cfg.url, { apiKey: key.token }).smsGet(hash));
const session = await step("session_create", () => alice.sessionCreate());
await step("session_get", () => new Client(cfg.url, { session: session.token }).smsGet(hash));
const admin = new Client(cfg.url, { login: cfg.admin_login, password: cfg.admin_password,
                                    loginAs: `user.login ${cfg.login}` });
await step("login_as_get", () => admin.smsGet(hash));
await step("count", () => alice.smsGetCountForBody("Hello"));
await step("subscribe", () => alice.webhooksSubscribe("sms.mo", "http://127.0.0.1:9/hook", null));
await step("subscribe_again", () => alice.webhooksSubscribe("sms.mo", "http://127.0.0.1:9/hook"));
await step("not_found", () => alice.smsGet("ZZZZZZZZ"));
await step("invalid_to", () => alice.smsSend("", "12", "x"));
await step("bad_password", () => new Client(cfg.url, { login: cfg.login, password: "wrong" })
  .systemGetTimestamp());
console.log(JSON.stringify(out));
'''

PHP_PROGRAM = r'''<?php
declare(strict_types=1);

require __DIR__ . '/client/autoload.php';

use Rpcgw\Client;
use Rpcgw\RpcException;

$cfg = json_decode($argv[1], true, 512, JSON_THROW_ON_ERROR);
$out = [];

function step(string $name, callable $call): mixed
{
    global $out;
    try {
        $out[$name] = ['result' => $call()];
    } catch (RpcException $e) {
        $out[$name] = ['error' => ['code' => $e->getCode(), 'message' => $e->getMessage(),
            'data' => $e->data, 'http_status' => $e->httpStatus]];
    }
    return $out[$name]['result'] ?? null;
}

$alice = new Client($cfg['url'], login: $cfg['login'], password: $cfg['password']);
$hash = step('send', fn () => $alice->smsSend('', '+33612345678', 'Hello from php',
    ['user_data' => '42']));
step('get', fn () => $alice->smsGet($hash));
$key = step('api_key_create', fn () => $alice->apiKeyCreate('codegen'));
step('api_key_get', fn () => (new Client($cfg['url'], apiKey: $key['token']))->smsGet($hash));
$session = step('session_create', fn () => $alice->sessionCreate());
step('session_get', fn () => (new Client($cfg['url'], session: $session['token']))
    ->smsGet($hash));
$admin = new Client($cfg['url'], login: $cfg['admin_login'], password: $cfg['admin_password'],
    loginAs: 'user.login ' . $cfg['login']);
step('login_as_get', fn () => $admin->smsGet($hash));
step('count', fn () => $alice->smsGetCountForBody('Hello'));
step('subscribe', fn () => $alice->webhooksSubscribe('sms.mo', 'http://127.0.0.1:9/hook', null));
step('subscribe_again', fn () => $alice->webhooksSubscribe('sms.mo', 'http://127.0.0.1:9/hook'));
step('not_found', fn () => $alice->smsGet('ZZZZZZZZ'));
step('invalid_to', fn () => $alice->smsSend('', '12', 'x'));
step('bad_password', fn () => (new Client($cfg['url'], login: $cfg['login'], password: 'wrong'))
    ->systemGetTimestamp());
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR), "\n";
'''

GO_PROGRAM = r'''package main

import (
    "context"
    "encoding/json"
    "errors"
    "fmt"
    "os"

    "rpcgw"
)

var out = map[string]any{}

func step[T any](name string, call func() (T, error)) T {
    value, err := call()
    var rpcErr *rpcgw.Error
    switch {
    case err == nil:
        out[name] = map[string]any{"result": value}
    case errors.As(err, &rpcErr):
        out[name] = map[string]any{"error": map[string]any{"code": rpcErr.Code,
            "message": rpcErr.Message, "data": rpcErr.Data, "http_status": rpcErr.HTTPStatus}}
    default:
        panic(err)
    }
    return value
}

func main() {
    var cfg map[string]string
    if err := json.Unmarshal([]byte(os.Args[1]), &cfg); err != nil {
        panic(err)
    }
    ctx := context.Background()
    url := cfg["url"]
    alice := rpcgw.NewClient(url, rpcgw.BasicAuth(cfg["login"], cfg["password"]))
    userData := "42"
    hash := step("send", func() (rpcgw.Hash, error) {
        return alice.SmsSend(ctx, "", "+33612345678", "Hello from go",
            &rpcgw.SmsOptions{UserData: &userData})
    })
    step("get", func() (rpcgw.Sms, error) { return alice.SmsGet(ctx, hash) })
    key := step("api_key_create", func() (rpcgw.APIKeyCreated, error) {
        return alice.APIKeyCreate(ctx, "codegen")
    })
    withKey := rpcgw.NewClient(url, rpcgw.APIKeyAuth(key.Token))
    step("api_key_get", func() (rpcgw.Sms, error) { return withKey.SmsGet(ctx, hash) })
    session := step("session_create", func() (rpcgw.Session, error) {
        return alice.SessionCreate(ctx)
    })
    withSession := rpcgw.NewClient(url, rpcgw.SessionAuth(session.Token))
    step("session_get", func() (rpcgw.Sms, error) { return withSession.SmsGet(ctx, hash) })
    admin := rpcgw.NewClient(url, rpcgw.BasicAuth(cfg["admin_login"], cfg["admin_password"]))
    admin.LoginAs = "user.login " + cfg["login"]
    step("login_as_get", func() (rpcgw.Sms, error) { return admin.SmsGet(ctx, hash) })
    step("count", func() (rpcgw.CountForBody, error) {
        return alice.SmsGetCountForBody(ctx, "Hello", nil)
    })
    for _, name := range []string{"subscribe", "subscribe_again"} {
        step(name, func() (rpcgw.Webhook, error) {
            return alice.WebhooksSubscribe(ctx, rpcgw.WebhookEventTypeSmsMo,
                "http://127.0.0.1:9/hook", nil)
        })
    }
    step("not_found", func() (rpcgw.Sms, error) { return alice.SmsGet(ctx, "ZZZZZZZZ") })
    step("invalid_to", func() (rpcgw.Hash, error) { return alice.SmsSend(ctx, "", "12", "x", nil) })
    wrong := rpcgw.NewClient(url, rpcgw.BasicAuth(cfg["login"], "wrong"))
    step("bad_password", func() (int64, error) { return wrong.SystemGetTimestamp(ctx) })
    encoded, err := json.Marshal(out)
    if err != nil {
        panic(err)
    }
    fmt.Println(string(encoded))
}
'''


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: apt-get install {package} "
                    "(bash scripts/test installs it)")
    return path


def _go_env(root: Path) -> dict[str, str]:
    """Go writes its build cache and module cache somewhere: keep both in the test's
    temporary tree, and forbid any network access (the module needs none)."""
    return {**os.environ, "GOCACHE": str(root / "gocache"), "GOPATH": str(root / "gopath"),
            "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0", "HOME": str(root)}


class Programs:
    """The generated clients and their programs, ready to run: built once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.contract = load_contract()
        self.files = {lang: generate(lang, self.contract) for lang in LANGUAGES}
        for lang, files in self.files.items():
            write_output(files, root / lang / "client")
        (root / "python" / "check.py").write_text(PYTHON_PROGRAM)
        (root / "typescript" / "check.mjs").write_text(NODE_PROGRAM)
        (root / "php" / "check.php").write_text(PHP_PROGRAM)
        main = root / "go" / "client" / "cmd" / "rpcgwcheck" / "main.go"
        main.parent.mkdir(parents=True)
        # Indented with spaces here, like the rest of this file; gofmt wants tabs.
        main.write_text(re.sub(r"(?m)^(?:    )+", lambda m: "\t" * (len(m.group(0)) // 4),
                               GO_PROGRAM))
        self._go_binary: Path | None = None

    def command(self, lang: str) -> list[str]:
        here = self.root / lang
        if lang == "python":
            # -S: no site-packages, so the client cannot lean on a third-party package.
            return [_need("python3", "python3"), "-S", str(here / "check.py"),
                    "CONFIG", str(here / "client")]
        if lang == "typescript":
            return [_need("node", "nodejs"), str(here / "check.mjs"), "CONFIG"]
        if lang == "php":
            return [_need("php", "php-cli"), "-n", "-d", "display_errors=stderr",
                    str(here / "check.php"), "CONFIG"]
        return [str(self.go_binary()), "CONFIG"]

    def go_binary(self) -> Path:
        if self._go_binary is None:
            go = _need("go", "golang-go")
            binary = self.root / "go" / "rpcgwcheck"
            build = subprocess.run([go, "build", "-o", str(binary), "./cmd/rpcgwcheck"],
                                   cwd=self.root / "go" / "client", env=_go_env(self.root),
                                   capture_output=True, text=True, timeout=300)
            assert build.returncode == 0, build.stderr
            self._go_binary = binary
        return self._go_binary


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Programs:
    return Programs(tmp_path_factory.mktemp("clients"))


async def run_program(command: list[str], config: dict[str, str]) -> dict[str, Any]:
    """Run a client program without blocking the loop that serves the gateway."""
    argv = [json.dumps(config) if arg == "CONFIG" else arg for arg in command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NODE_"))}
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


def check(out: dict[str, Any], lang: str) -> None:
    """What every generated client must have done; ``lang`` only for messages."""
    for name in ("send", "get", "api_key_create", "api_key_get", "session_create",
                 "session_get", "login_as_get", "count"):
        assert "result" in out[name], (lang, name, out[name])
    sms_hash = out["send"]["result"]
    assert HASH.fullmatch(sms_hash), sms_hash
    sms = out["get"]["result"]
    assert sms["hash"] == sms_hash
    assert sms["type"] == "OUT" and sms["to"] == "+33612345678"
    assert sms["text"] == f"Hello from {'node' if lang == 'typescript' else lang}"
    assert sms["user_data"] == "42" and sms["status"] in ("PENDING", "CREATED")
    assert out["api_key_create"]["result"]["name"] == "codegen"
    # The same message read back with an API key, a session token and Login-As.
    for name in ("api_key_get", "session_get", "login_as_get"):
        assert out[name]["result"]["hash"] == sms_hash, (lang, name)
    # An optional parameter left out is not sent: the gateway chose the encoding.
    assert out["count"]["result"]["parts"] == 1
    assert out["count"]["result"]["encoding"] == "GSM"

    hook = out["subscribe"]["result"]
    assert HASH.fullmatch(hook["hash"]) and hook["type"] == "sms.mo", (lang, hook)
    duplicate = out["subscribe_again"]["error"]
    assert (duplicate["code"], duplicate["message"]) == (120, "TYPE_ENDPOINT_DUPLICATE")

    not_found = out["not_found"]["error"]
    assert (not_found["code"], not_found["message"], not_found["http_status"]) == (
        110, "NOT_FOUND", 200)
    invalid = out["invalid_to"]["error"]
    assert (invalid["code"], invalid["message"]) == (-32602, "INVALID_PARAM")
    assert invalid["data"]["param"] == "to" and invalid["http_status"] == 200
    # A 401 answer still carries a JSON-RPC error body; the client reads it.
    denied = out["bad_password"]["error"]
    assert (denied["code"], denied["message"], denied["http_status"]) == (
        101, "AUTHENTICATION_FAILED", 401)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
async def test_generated_client_runs_against_a_live_gateway(
        lang: str, programs: Programs, gateway_factory: Any, sqlite_url: str) -> None:
    command = programs.command(lang)  # builds the Go program once, before the gateway
    _, rpc = await gateway_factory(sqlite_url)
    out = await run_program(command, {
        "url": rpc.url, "login": ALICE[0], "password": ALICE[1],
        "admin_login": ADMIN[0], "admin_password": ADMIN[1]})
    check(out, lang)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_generation_is_reproducible(lang: str, programs: Programs) -> None:
    again = generate(lang, load_contract())
    assert again == programs.files[lang]
    for relative, text in again.items():
        assert (programs.root / lang / "client" / relative).read_bytes() == text.encode()
        assert not re.search(r"20\d\d-\d\d-\d\d[T ]\d\d:\d\d", text), relative


def test_cli_and_script_write_the_same_files(tmp_path: Path) -> None:
    from rpcgw.cli import main

    assert main(["gen-client", "go", "--out", str(tmp_path / "cli")]) == 0
    script = Path(__file__).resolve().parent.parent / "scripts" / "gen_client.py"
    done = subprocess.run([sys.executable, str(script), "go", "--out", str(tmp_path / "script")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cli_files = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*")
                       if p.is_file())
    assert cli_files == [Path("client.go"), Path("go.mod"), Path("methods.go"),
                         Path("types.go")]
    for relative in cli_files:
        assert ((tmp_path / "cli" / relative).read_bytes()
                == (tmp_path / "script" / relative).read_bytes())


def test_every_method_and_named_type_appears_in_every_client(programs: Programs) -> None:
    from rpcgw.codegen import go, php, python, typescript
    from rpcgw.codegen.model import build

    api = build(programs.contract)
    texts = {lang: "\n".join(files.values()) for lang, files in programs.files.items()}
    for method in api.methods:
        assert f"def {python.identifier(method.name)}(" in texts["python"]
        assert f"  {typescript.identifier(method.name)}(" in texts["typescript"]
        assert f"public function {php.identifier(method.name)}(" in texts["php"]
        assert f") {go.exported(method.name)}(" in texts["go"]
        for lang, text in texts.items():
            assert json.dumps(method.name) in text or f"'{method.name}'" in text, (lang, method)
    for named in api.types:
        assert f"\n{named.name}" in texts["python"] or f"class {named.name}(" in texts["python"]
        assert f"export interface {named.name} " in texts["typescript"] or \
            f"export type {named.name} " in texts["typescript"]
        assert f"@phpstan-type {named.name} " in texts["php"]
        assert f"\ntype {go.exported(named.name)} " in texts["go"]


def test_identifiers_are_idiomatic() -> None:
    from rpcgw.codegen import go, php, python, typescript

    assert python.identifier("sms.send") == "sms_send"
    assert python.identifier("api-key.create") == "api_key_create"
    assert python.identifier("from") == "from_"
    assert typescript.identifier("sms.get_count_for_body") == "smsGetCountForBody"
    assert typescript.identifier("api-key.create") == "apiKeyCreate"
    assert typescript.identifier("delete") == "delete_"
    assert php.identifier("refresh_token") == "refreshToken"
    assert go.exported("sms.send") == "SmsSend"
    assert go.exported("api-key.create") == "APIKeyCreate"
    assert go.exported("device_id") == "DeviceID"
    assert go.local("type") == "typ"


def test_go_output_is_gofmt_clean(programs: Programs) -> None:
    gofmt = _need("gofmt", "golang-go")
    done = subprocess.run([gofmt, "-l", "."], cwd=programs.root / "go" / "client",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_php_output_passes_php_lint(programs: Programs) -> None:
    php_bin = _need("php", "php-cli")
    for path in sorted((programs.root / "php" / "client").rglob("*.php")):
        done = subprocess.run([php_bin, "-l", str(path)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_new_method_in_the_contract_gets_a_typed_function_everywhere() -> None:
    """Generators are generic: a method they have never seen (webhooks.subscribe, with an
    enum, a nullable object and a record) comes out typed in every language."""
    contract = json.loads(json.dumps(load_contract()))
    contract["methods"].append({
        "name": "webhooks.subscribe", "summary": "Subscribe to events.",
        "params": [
            {"name": "type", "required": True,
             "schema": {"type": "string", "enum": ["sms.mt.status_update", "sms.mo"]}},
            {"name": "endpoint", "required": True, "schema": {"type": "string"}},
            {"name": "options", "required": False,
             "schema": {"type": ["object", "null"],
                        "properties": {"secret": {"type": "string"},
                                       "headers": {"type": "object",
                                                   "additionalProperties": {"type": "string"}}}}},
        ],
        "result": {"name": "webhook", "schema": {"type": "object",
                                                 "properties": {"id": {"type": "string"}}}},
    })
    py = generate("python", contract)["rpcgw_client.py"]
    assert ("def webhooks_subscribe(\n        self,\n"
            '        type: Literal["sms.mt.status_update", "sms.mo"],\n') in py
    assert "options: WebhooksSubscribeOptions | None = None," in py
    assert "headers: dict[str, str]" in py
    ts = generate("typescript", contract)["rpcgw-client.d.ts"]
    assert "webhooksSubscribe(\n" in ts and 'type: "sms.mt.status_update" | "sms.mo",' in ts
    assert "options?: WebhooksSubscribeOptions | null," in ts
    php_text = generate("php", contract)["src/Client.php"]
    assert "public function webhooksSubscribe(" in php_text and "?array $options = null" in php_text
    go_text = generate("go", contract)
    assert "options *WebhooksSubscribeOptions," in go_text["methods.go"]
    assert "Headers map[string]string" in go_text["types.go"]

"""PHP client (8.2+): ``src/Client.php`` and ``src/RpcException.php`` in the namespace
``Rpcgw``, a ``composer.json`` (PSR-4, no dependencies) and ``autoload.php`` for projects
without Composer.

HTTP goes through PHP's own stream wrapper rather than ext-curl: Debian's ``php-cli``
has no curl, and the wrapper does HTTPS, timeouts and keeps non-2xx bodies
(``ignore_errors``), which is all a JSON-RPC client needs.

Answers stay PHP arrays, as ``json_decode`` gives them; the named schemas become
PHPStan/Psalm array-shape aliases (``@phpstan-type Sms array{hash: Hash, ...}``) so static
analysis and editors know every key, while native signatures use the PHP types.
"""

from __future__ import annotations

import json

from .model import Api, Method, NamedType, Output, TypeRef, camel
from .text import errors_text, hanging, header_text, method_text, param_text, result_text, wrap

_NATIVE = {"string": "string", "integer": "int", "number": "float", "boolean": "bool"}
_DOC = {"string": "string", "integer": "int", "number": "float", "boolean": "bool",
        "any": "mixed"}


def identifier(name: str) -> str:
    ident = camel(name) or "value"
    if ident[0].isdigit():
        ident = "_" + ident
    return "thisValue" if ident == "this" else ident


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _native_parts(t: TypeRef, api: Api) -> list[str]:
    """PHP native type members for ``t`` (without null)."""
    if t.kind in _NATIVE:
        return [_NATIVE[t.kind]]
    if t.kind == "enum":
        base = t.enum_base
        return [_NATIVE[base]] if base in _NATIVE else ["mixed"]
    if t.kind in ("array", "map", "object"):
        return ["array"]
    if t.kind == "ref":
        named = api.type(t.name)
        return ["array"] if named.form == "object" else _native_parts(named.target, api)
    if t.kind == "union":
        parts: list[str] = []
        for option in t.options:
            for part in _native_parts(option, api):
                if part not in parts:
                    parts.append(part)
        return ["mixed"] if "mixed" in parts else parts
    return ["mixed"]


def native_type(t: TypeRef, api: Api, *, nullable: bool = False) -> str:
    parts = _native_parts(t, api)
    if parts == ["mixed"]:
        return "mixed"
    if t.nullable or nullable:
        return f"?{parts[0]}" if len(parts) == 1 else "|".join(parts + ["null"])
    return "|".join(parts)


def doc_type(t: TypeRef) -> str:
    """The PHPStan type: literal unions, list<>, array<string, >, shape aliases."""
    if t.kind in _DOC:
        text = _DOC[t.kind]
    elif t.kind == "enum":
        text = "|".join(_literal(v) for v in t.values)
    elif t.kind == "array":
        text = f"list<{doc_type(t.item or TypeRef('any'))}>"
    elif t.kind == "map":
        text = f"array<string, {doc_type(t.item or TypeRef('any'))}>"
    elif t.kind in ("ref", "object"):
        text = t.name
    elif t.kind == "union":
        text = "|".join(doc_type(o) for o in t.options)
    else:
        text = "mixed"
    if t.nullable and text != "mixed":
        text += "|null"
    return text


def _shape_key(name: str) -> str:
    return name if name.replace("_", "a").isalnum() and not name[0].isdigit() else _literal(name)


def _alias(named: NamedType) -> list[str]:
    if named.form in ("alias", "enum"):
        return [f"@phpstan-type {named.name} {doc_type(named.target)}"]
    lines = [f"@phpstan-type {named.name} array{{"]
    for f in named.fields:
        lines.append(f"    {_shape_key(f.name)}{'' if f.required else '?'}: {doc_type(f.type)},")
    if named.additional is not None:
        lines.append(f"    ...<string, {doc_type(named.additional)}>")
    lines.append("}")
    return lines


def docblock(lines: list[str], indent: str) -> list[str]:
    body = [line.replace("*/", "*\\/") for line in lines]
    while body and not body[-1].strip():
        body.pop()
    return [f"{indent}/**", *[f"{indent} *{(' ' + line) if line else ''}" for line in body],
            f"{indent} */"]


def _render_method(method: Method, api: Api) -> list[str]:
    doc = wrap(method_text(method), "", 90) + [""]
    for p in method.params:
        text = doc_type(p.type) + ("" if p.required or p.type.nullable else "|null")
        doc += hanging(f"@param {text} ${identifier(p.name)} {param_text(p, api)}".rstrip(),
                       "", "    ", 90)
    doc += hanging(f"@return {doc_type(method.result)} {result_text(method, api)}".rstrip(),
                   "", "    ", 90)
    doc += hanging(f"@throws RpcException {errors_text(method)}", "", "    ", 90)
    out = docblock(doc, "    ")
    args = []
    for p in method.params:
        native = native_type(p.type, api, nullable=not p.required)
        default = "" if p.required else " = null"
        args.append(f"{native} ${identifier(p.name)}{default}")
    result = native_type(method.result, api)
    name = identifier(method.name)
    line = f"    public function {name}({', '.join(args)}): {result}"
    if len(line) <= 100:
        out.append(line)
    else:
        out.append(f"    public function {name}(")
        out.extend(f"        {arg}," for arg in args)
        out.append(f"    ): {result}")
    params = ", ".join(f"${identifier(p.name)}" for p in method.params)
    out.append("    {")
    out.append(f"        return $this->send({_literal(method.name)}, [{params}], "
               f"{method.required_count});")
    out.append("    }")
    return out


_EXCEPTION = '''<?php

{header}

declare(strict_types=1);

namespace Rpcgw;

/**
 * An error answered by the gateway, or no usable answer at all.
 *
 * getCode() and getMessage() are those of the JSON-RPC error object (docs/errors.md):
 * -32602 INVALID_PARAM, 110 NOT_FOUND, 101 AUTHENTICATION_FAILED ... $data holds its
 * details (['param' => 'to', 'reason' => ...]) or null. $httpStatus is the HTTP status of
 * the answer: 200 for application errors, 401/429 for authentication, 403 for a refused
 * CALLR-Login-As, 413 for a request too large; 0 when none came.
 *
 * Failures on this side use code -1, as CALLR's SDKs do: HTTP_EXCEPTION (no answer:
 * connection, TLS, timeout), HTTP_CODE_ERROR (an HTTP error without a JSON-RPC body) and
 * INVALID_RESPONSE (an answer that is not a JSON-RPC response to this request).
 */
final class RpcException extends \\RuntimeException
{{
    public function __construct(
        int $code,
        string $message,
        public readonly mixed $data = null,
        public readonly int $httpStatus = 0,
        ?\\Throwable $previous = null,
    ) {{
        parent::__construct($message, $code, $previous);
    }}
}}
'''

_CLIENT_RUNTIME = '''
    private readonly string $authorization;
    private int $nextId = 1;

    /**
     * Give exactly one of $login with $password (HTTP Basic, as CALLR's SDKs send),
     * $apiKey (from apiKeyCreate) or $session (from sessionCreate). $loginAs
     * ('user.login alice') lets an administrator act as another user. $caFile trusts a
     * private CA (rpcgw cert's ca.pem) for HTTPS.
     */
    public function __construct(
        private readonly string $url,
        ?string $login = null,
        ?string $password = null,
        ?string $apiKey = null,
        ?string $session = null,
        private readonly ?string $loginAs = null,
        private readonly float $timeout = 30.0,
        private readonly ?string $caFile = null,
    ) {
        $given = (int) ($login !== null || $password !== null) + (int) ($apiKey !== null)
            + (int) ($session !== null);
        if ($given !== 1) {
            throw new \\InvalidArgumentException(
                'give login and password, apiKey, or session: exactly one');
        }
        if ($apiKey !== null) {
            $this->authorization = 'Api-Key ' . $apiKey;
        } elseif ($session !== null) {
            $this->authorization = 'Session ' . $session;
        } elseif ($login === null || $login === '' || $password === null) {
            throw new \\InvalidArgumentException('login and password go together');
        } else {
            $this->authorization = 'Basic ' . base64_encode($login . ':' . $password);
        }
    }

    /**
     * Call any method by name with positional params and return its result.
     *
     * @param list<mixed> $params
     * @throws RpcException
     */
    public function call(string $method, array $params = []): mixed
    {
        $id = $this->nextId++;
        $body = json_encode(
            ['jsonrpc' => '2.0', 'id' => $id, 'method' => $method, 'params' => $params],
            JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION
                | JSON_THROW_ON_ERROR,
        );
        $headers = [
            'Content-Type: application/json; charset=utf-8',
            'Accept: application/json',
            'Authorization: ' . $this->authorization,
            'Connection: close',
        ];
        if ($this->loginAs !== null) {
            $headers[] = 'CALLR-Login-As: ' . $this->loginAs;
        }
        $options = [
            'http' => [
                'method' => 'POST',
                'header' => implode("\\r\\n", $headers),
                'content' => $body,
                'timeout' => $this->timeout,
                'ignore_errors' => true, // 401, 403, 413, 429 still carry a JSON-RPC error
                'protocol_version' => 1.1,
            ],
        ];
        if ($this->caFile !== null) {
            $options['ssl'] = ['cafile' => $this->caFile, 'verify_peer' => true,
                'verify_peer_name' => true];
        }
        $raw = @file_get_contents($this->url, false, stream_context_create($options));
        if ($raw === false) {
            $error = error_get_last();
            throw new RpcException(-1, 'HTTP_EXCEPTION',
                ['exception' => $error['message'] ?? 'no answer']);
        }
        $status = 0;
        foreach ($http_response_header ?? [] as $line) {
            if (preg_match('#^HTTP/\\\\S+\\\\s+(\\\\d{3})#', $line, $match) === 1) {
                $status = (int) $match[1]; // the last one counts (after any 100 Continue)
            }
        }
        try {
            $answer = json_decode($raw, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\\JsonException) {
            $answer = null;
        }
        if (!is_array($answer) || ($answer['id'] ?? null) !== $id) {
            if ($status !== 200) {
                throw new RpcException(-1, 'HTTP_CODE_ERROR', ['http_code' => $status], $status);
            }
            throw new RpcException(-1, 'INVALID_RESPONSE', ['response' => substr($raw, 0, 200)],
                $status);
        }
        if (isset($answer['error']) && is_array($answer['error'])) {
            $error = $answer['error'];
            throw new RpcException((int) ($error['code'] ?? -1), (string) ($error['message'] ?? ''),
                $error['data'] ?? null, $status);
        }
        if ($status !== 200 || !array_key_exists('result', $answer)) {
            throw new RpcException(-1, 'INVALID_RESPONSE', ['response' => substr($raw, 0, 200)],
                $status);
        }
        return $answer['result'];
    }

    /**
     * Optional params left null at the end are not sent, so the gateway applies its
     * defaults even where a parameter's schema does not accept null.
     *
     * @param list<mixed> $params
     */
    private function send(string $method, array $params, int $required): mixed
    {
        while (count($params) > $required && end($params) === null) {
            array_pop($params);
        }
        return $this->call($method, $params);
    }
'''

_AUTOLOAD = '''<?php

{header}

declare(strict_types=1);

// For projects without Composer: require this file once.
spl_autoload_register(static function (string $class): void {{
    $prefix = 'Rpcgw\\\\';
    if (str_starts_with($class, $prefix)) {{
        $relative = str_replace('\\\\', '/', substr($class, strlen($prefix)));
        $file = __DIR__ . '/src/' . $relative . '.php';
        if (is_file($file)) {{
            require $file;
        }}
    }}
}});
'''


def generate(api: Api) -> Output:
    header = "\n".join(["/*", *[f" * {line}" if line else " *"
                                for line in wrap(header_text(api, "php"), "", 90)], " */"])
    doc = ["A connection to one gateway endpoint with one set of credentials.", "",
           "    $client = new \\Rpcgw\\Client('http://127.0.0.1:8080/json-rpc/v1.1/',",
           "        login: 'alice', password: 'secret');",
           "    $hash = $client->smsSend('', '+33612345678', 'Hello');", "",
           "Objects are PHP arrays as json_decode() returns them; the shapes below name",
           "their keys for PHPStan, Psalm and editors."]
    for named in api.types:
        doc.append("")
        description = " ".join(p for p in (named.description, named.constraints and
                                           (named.constraints[0].upper()
                                            + named.constraints[1:] + ".")) if p)
        if description:
            doc += wrap(f"{named.name}: {description}", "", 90)
        doc += _alias(named)
    out = ["<?php", "", header, "", "declare(strict_types=1);", "", "namespace Rpcgw;", ""]
    out += docblock(doc, "")
    out.append("final class Client")
    out.append("{")
    out.append(_CLIENT_RUNTIME.strip("\n"))
    for method in api.methods:
        out.append("")
        out.extend(_render_method(method, api))
    out.append("}")
    composer = {
        "name": "rpcgw/client",
        "description": f"Client for the {api.title} JSON-RPC API (generated)",
        "type": "library",
        "version": api.version or "0.0.0",
        "require": {"php": ">=8.2", "ext-json": "*"},
        "autoload": {"psr-4": {"Rpcgw\\": "src/"}},
    }
    output = Output()
    output.add("src/Client.php", "\n".join(out))
    output.add("src/RpcException.php", _EXCEPTION.format(header=header))
    output.add("autoload.php", _AUTOLOAD.format(header=header))
    output.add("composer.json", json.dumps(composer, indent=4))
    return output

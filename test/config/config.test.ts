import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { isScalar, parseDocument, visit } from 'yaml';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  configWarnings,
  defaultConfig,
  loadConfig,
  parseConfig,
  parseListen,
  type ConfigProblem,
} from '../../src/config/index.js';

function problems(text: string, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    parseConfig(text, '/etc/warden/w.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('config_invalid');
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

function lines(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(text, 'w.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n').slice(1).map((l) => l.trim());
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('are safe: loopback listeners, no identity, no policy, audit required, echo only', () => {
    const c = defaultConfig();
    expect(c.listen.http).toEqual({ host: '127.0.0.1', port: 8700 });
    expect(c.listen.grpc).toEqual({ host: '127.0.0.1', port: 8701 });
    expect(c.listen.admin).toEqual({ host: '127.0.0.1', port: 8702 });
    expect(c.identity.methods).toEqual([]);
    expect(c.policy).toMatchObject({ engine: 'rego', paths: [], entrypoint: 'warden/decision' });
    expect(c.audit).toEqual({ sinks: ['stdout'], required: true, write_timeout_ms: 5000 });
    expect(c.providers).toEqual({ echo: { kind: 'echo' } });
    expect(c.models).toEqual({ echo: 'echo' });
    expect(c.environment.name).toBe('production');
    expect(c.limits).toEqual({
      max_body_bytes: 1048576,
      max_header_bytes: 16384,
      max_variables: 64,
      max_variable_length: 32768,
      max_json_depth: 64,
      max_json_values: 100000,
      max_in_flight: 1024,
      client_timeout_ms: 120000,
      idle_timeout_ms: 65000,
      max_connections: 1024,
      upstream_timeout_ms: 300000,
      shutdown_grace_ms: 10000,
    });
    expect(c.log).toEqual({ level: 'info', format: 'json' });
    expect(c.reload).toEqual({ watch: true, debounce_ms: 250, poll_ms: 2000, timeout_ms: 30000 });
    // The periodic check walks every watched directory: off, or no more often than every 500 ms.
    expect(parseConfig('reload: { poll_ms: 0 }\n', 'w.yaml').reload.poll_ms).toBe(0);
    expect(parseConfig('reload: { poll_ms: 500 }\n', 'w.yaml').reload.poll_ms).toBe(500);
    expect(problems('reload: { poll_ms: 10 }\n').map((p) => `${p.path}: ${p.message}`)).toEqual(['reload.poll_ms: must be 0 (off) or at least 500 ms']);
  });

  it('an empty file gives the defaults, and warns that nothing is allowed', () => {
    const c = parseConfig('', 'empty.yaml');
    expect(c).toEqual(defaultConfig());
    const w = configWarnings(c);
    expect(w.some((m) => m.includes('identity.methods is empty'))).toBe(true);
    expect(w.some((m) => m.includes('policy.paths is empty'))).toBe(true);
  });

  it('fills nested defaults inside a partly written section', () => {
    const c = parseConfig('providers:\n  up: { kind: openai, base_url: "http://127.0.0.1:9/v1" }\nmodels: { m: up }\n', 'x.yaml');
    const up = c.providers.up;
    expect(up?.kind).toBe('openai');
    if (up?.kind !== 'openai') throw new Error('unreachable');
    expect(up.timeouts).toEqual({ connect_ms: 5000, headers_ms: 60000, body_ms: 300000 });
    // Unset: the registry uses limits.max_in_flight (no second, per-provider queue by default).
    expect(up.pool.connections).toBeUndefined();
    // Below common servers' idle timeouts (uvicorn's 5 s), which often come without a Keep-Alive hint.
    expect(up.pool.keep_alive_ms).toBe(4000);
    expect(up.api_key).toBeUndefined();
    // Well above a CFS throttling period (100 ms): a stalled process must not deny a cheap policy.
    expect(c.policy.timeout_ms).toBe(250);
  });

  it('warns about a pool.connections above limits.max_in_flight: that cap is never reached', () => {
    const yaml = (n: number) => `providers:\n  up: { kind: openai, base_url: "http://127.0.0.1:9/v1", pool: { connections: ${n} } }\nmodels: { m: up }\nlimits: { max_in_flight: 100 }\n`;
    const over = configWarnings(parseConfig(yaml(200), 'x.yaml')).filter((m) => m.includes('pool.connections'));
    expect(over).toEqual(['providers.up.pool.connections (200) is above limits.max_in_flight (100): it is never reached']);
    expect(configWarnings(parseConfig(yaml(100), 'x.yaml')).filter((m) => m.includes('pool.connections'))).toEqual([]);
  });
});

describe('the embedded default deploy/local/warden.yaml', () => {
  it('loads, with paths resolved against its directory', () => {
    const file = resolve('deploy/local/warden.yaml');
    const c = loadConfig(file, {});
    expect(c.identity.methods).toEqual(['dev']);
    expect(c.policy.paths).toEqual([resolve('policies')]);
    expect(c.templates.paths).toEqual([resolve('deploy/local/templates')]);
    expect(c.models).toEqual({ echo: 'echo', 'gpt-4o-mini': 'echo' });
    expect(c.environment).toMatchObject({ name: 'development', cluster: 'local' });
  });
});

describe('relative paths', () => {
  it('resolve against the config file directory, absolute ones stay', () => {
    const c = parseConfig(
      [
        'listen: { http_socket: run/http.sock }',
        'policy: { paths: [pol, /abs/pol] }',
        'templates: { paths: [../t] }',
        'identity: { methods: [kubernetes], kubernetes: { issuer: https://k, audiences: [warden], jwks_file: keys/jwks.json } }',
        'audit: { sinks: [stdout, { file: logs/audit.jsonl }] }',
      ].join('\n'),
      '/srv/conf/warden.yaml',
    );
    expect(c.listen.http_socket).toBe('/srv/conf/run/http.sock');
    expect(c.policy.paths).toEqual(['/srv/conf/pol', '/abs/pol']);
    expect(c.templates.paths).toEqual(['/srv/t']);
    expect(c.identity.kubernetes?.jwks_file).toBe('/srv/conf/keys/jwks.json');
    expect(c.audit.sinks).toEqual(['stdout', { file: '/srv/conf/logs/audit.jsonl' }]);
  });

  it("of a config reached through a symbolic link resolve against the link's directory, not its target's (README)", () => {
    // A ConfigMap mount is links (`warden.yaml` -> `..data/warden.yaml` -> a timestamped
    // directory): the target's directory changes with every update, the link's does not.
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-config-')));
    try {
      mkdirSync(join(dir, 'app'));
      mkdirSync(join(dir, 'etc'));
      writeFileSync(join(dir, 'app', 'warden.yaml'), 'templates: { paths: [templates] }\n');
      symlinkSync(join(dir, 'app', 'warden.yaml'), join(dir, 'etc', 'warden.yaml'));
      expect(loadConfig(join(dir, 'etc', 'warden.yaml'), {}).templates.paths).toEqual([join(dir, 'etc', 'templates')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('environment overrides', () => {
  it('replace listeners and log level', () => {
    const c = parseConfig('listen: { http: 127.0.0.1:1 }\nlog: { level: warn }\n', 'w.yaml', {
      WARDEN_HTTP_LISTEN: '0.0.0.0:9000',
      WARDEN_GRPC_LISTEN: '[::1]:9001',
      WARDEN_ADMIN_LISTEN: 'localhost:9002',
      WARDEN_LOG_LEVEL: 'debug',
    });
    expect(c.listen.http).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(c.listen.grpc).toEqual({ host: '::1', port: 9001 });
    expect(c.listen.admin).toEqual({ host: 'localhost', port: 9002 });
    expect(c.log.level).toBe('debug');
  });

  it('loadConfig reads process-style env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
    const file = join(dir, 'w.yaml');
    writeFileSync(file, 'log: { level: info }\n');
    expect(loadConfig(file, { WARDEN_LOG_LEVEL: 'error' }).log.level).toBe('error');
  });

  it('bad override values are errors naming the variable', () => {
    expect(lines('', { WARDEN_HTTP_LISTEN: 'nope', WARDEN_LOG_LEVEL: 'loud' })).toEqual([
      'environment variable WARDEN_HTTP_LISTEN: listen.http: must be host:port, e.g. 127.0.0.1:8700',
      'environment variable WARDEN_LOG_LEVEL: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    ]);
  });

  it('a bad override is reported with a file that does not load (every problem at once, not one after the other)', () => {
    const level = 'environment variable WARDEN_LOG_LEVEL: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"';
    const env = { WARDEN_LOG_LEVEL: 'loud' };
    expect(lines('- a\n', env)).toEqual(['w.yaml:1:1: (root): must be a mapping of keys to values', level]);
    expect(lines('listen:\n\thttp: 127.0.0.1:0\n', env)).toEqual(['w.yaml:2:1: (root): YAML syntax: Tabs are not allowed as indentation', level]);
    expect(lines('log: !vault x\n', env)).toEqual(['w.yaml:1:6: (root): unknown YAML tag !vault', level]);
    const dir = mkdtempSync(join(tmpdir(), 'warden-cfg-'));
    expect(() => loadConfig(join(dir, 'missing.yaml'), { WARDEN_HTTP_LISTEN: '127.0.0.1:70000' })).toThrow(
      `invalid configuration (2 problems):\n  ${join(dir, 'missing.yaml')}: (root): cannot read the file (ENOENT)\n  environment variable WARDEN_HTTP_LISTEN: listen.http: port must be a number from 0 to 65535`,
    );
    // A problem the file and the variable share is said once.
    expect(lines('listen: { http: 127.0.0.1:9000 }\n', { WARDEN_GRPC_LISTEN: '127.0.0.1:9000', WARDEN_LOG_LEVEL: 'loud' })).toEqual([
      level,
      'environment variable WARDEN_GRPC_LISTEN: listen.grpc: uses the same address as listen.http',
    ]);
  });

  it('a variable set but empty is refused by name, not read as unset (the file would win while the operator believes the override applies)', () => {
    expect(lines('log: { level: info }\n', { WARDEN_HTTP_LISTEN: '', WARDEN_GRPC_LISTEN: '', WARDEN_ADMIN_LISTEN: '', WARDEN_LOG_LEVEL: '' })).toEqual([
      'environment variable WARDEN_HTTP_LISTEN: listen.http: is set but empty: give it a value, or unset it to use the file',
      'environment variable WARDEN_GRPC_LISTEN: listen.grpc: is set but empty: give it a value, or unset it to use the file',
      'environment variable WARDEN_ADMIN_LISTEN: listen.admin: is set but empty: give it a value, or unset it to use the file',
      'environment variable WARDEN_LOG_LEVEL: log.level: is set but empty: give it a value, or unset it to use the file',
    ]);
    // Blank is not empty: it is a value, and not a valid one.
    expect(lines('', { WARDEN_HTTP_LISTEN: ' ' })).toEqual(['environment variable WARDEN_HTTP_LISTEN: listen.http: must be host:port, e.g. 127.0.0.1:8700']);
    // Unset is unset: the file's values.
    expect(parseConfig('log: { level: warn }\n', 'w.yaml', { WARDEN_LOG_LEVEL: undefined }).log.level).toBe('warn');
  });

  it('a WARDEN_* variable Warden does not read is a warning naming the override meant, not ignored without a word', () => {
    const warnings: string[] = [];
    const env = { WARDEN_HTTP_PORT: '9000', WARDEN_LOGLEVEL: 'debug', WARDEN_TOKEN: 't', WARDEN_TOKEN_FILE: '/t', WARDEN_LOG_LEVEL: 'warn', OTHER: 'x' };
    const c = parseConfig('', 'w.yaml', env, { onWarning: (w) => warnings.push(w) });
    expect(c.log.level).toBe('warn');
    const overrides = 'the overrides are WARDEN_HTTP_LISTEN, WARDEN_GRPC_LISTEN, WARDEN_ADMIN_LISTEN, WARDEN_LOG_LEVEL';
    expect(warnings.filter((w) => w.includes('environment variable'))).toEqual([
      `environment variable WARDEN_HTTP_PORT is not one Warden reads (did you mean WARDEN_HTTP_LISTEN?); ${overrides}`,
      `environment variable WARDEN_LOGLEVEL is not one Warden reads (did you mean WARDEN_LOG_LEVEL?); ${overrides}`,
    ]);
  });

  it('a WARDEN_* variable the config reads as a secret is no unknown one: its own env: ref, or one secrets.env_allow lets templates read', () => {
    const warnings: string[] = [];
    const yaml = [
      'providers:',
      '  openai: { kind: openai, base_url: "https://api.example.com/v1", api_key: "env://WARDEN_OPENAI_KEY" }',
      'models: { gpt-4o-mini: openai }',
      'secrets: { env_allow: ["WARDEN_TPL_*"] }',
      '',
    ].join('\n');
    parseConfig(yaml, 'w.yaml', { WARDEN_OPENAI_KEY: 'k', WARDEN_TPL_CODE: 'c', WARDEN_HTTP_PORT: '9000' }, { onWarning: (w) => warnings.push(w) });
    expect(warnings.filter((w) => w.includes('environment variable')).map((w) => w.split(' is ')[0])).toEqual(['environment variable WARDEN_HTTP_PORT']);
  });

  it('a listen collision an override causes names the variable, not a line of the file', () => {
    // Both from the environment: the later key's variable.
    expect(lines('listen:\n  http: 127.0.0.1:0\n  admin: 127.0.0.1:0\n', { WARDEN_HTTP_LISTEN: '127.0.0.1:9000', WARDEN_ADMIN_LISTEN: '127.0.0.1:9000' })).toEqual([
      'environment variable WARDEN_ADMIN_LISTEN: listen.admin: uses the same address as listen.http',
    ]);
    // The override meets a default (no listen section at all): the variable, from its own key's view.
    expect(lines('log:\n  level: info\n', { WARDEN_HTTP_LISTEN: '127.0.0.1:8702' })).toEqual([
      'environment variable WARDEN_HTTP_LISTEN: listen.http: uses the same address as listen.admin',
    ]);
    // The override meets a value of the file: still the variable, which is what changed.
    expect(lines('# c\nlisten:\n  admin: 0.0.0.0:9000\n', { WARDEN_HTTP_LISTEN: '127.0.0.1:9000' })).toEqual([
      'environment variable WARDEN_HTTP_LISTEN: listen.http: 127.0.0.1:9000 overlaps listen.admin (0.0.0.0:9000): both would listen on port 9000 of 127.0.0.1',
    ]);
  });
});

describe('errors name file:line:col, key path and what is wrong', () => {
  it('unknown keys, with a suggestion', () => {
    expect(lines('listen:\n  http: 127.0.0.1:1\n  admn: 127.0.0.1:2\nlimts: {}\n')).toEqual([
      'w.yaml:3:3: listen.admn: unknown key (did you mean "admin"?)',
      'w.yaml:4:1: limts: unknown key (did you mean "limits"?)',
    ]);
  });

  it('a file with very many problems (a data file given as the config) is refused at once, its message listing the first 100', () => {
    // 60,000 unknown top-level keys: each one's position was searched from the top of the mapping,
    // minutes of CPU (the test timed out); the message held every one (megabytes, cut short on a pipe).
    const keys = Array.from({ length: 60_000 }, (_, i) => `k${i}: ${i}`);
    let err: unknown;
    try {
      parseConfig(`${keys.join('\n')}\n`, 'w.yaml', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(60_000);
    expect(problems[59_999]).toMatchObject({ line: 60_000, column: 1, path: 'k59999' });
    const shown = (err as ConfigError).message.split('\n');
    expect(shown[0]).toBe('invalid configuration (60000 problems):');
    expect(shown).toHaveLength(1 + 100 + 1);
    expect(shown[1]).toBe('  w.yaml:1:1: k0: unknown key');
    expect(shown[100]).toBe('  w.yaml:100:1: k99: unknown key');
    expect(shown[101]).toBe('  ... and 59900 more problems');
  });

  it('unknown keys in every section get a suggestion, optional sections included', () => {
    const text = [
      'redaction:',
      '  profils: {}',
      '  hmac_kye: env://K',
      '  allow: { literal: [a] }',
      '  custom_entities: [{ name: X, patern: "x" }]',
      '  profiles: { p: { entites: [] } }',
      'providers:',
      '  o: { kind: openai, base_url: "http://127.0.0.1:1/v1", timeouts: { conect_ms: 1 }, pool: { conections: 1 } }',
      'identity:',
      '  spiffe: { trust_domains: [a.b], bundles: { "a.b": { jwks_fil: j.json } } }',
    ].join('\n');
    // Only the unknown keys here (the sections are incomplete on purpose: other problems are reported too).
    expect(lines(text).filter((l) => l.includes('unknown key'))).toEqual([
      'w.yaml:2:3: redaction.profils: unknown key (did you mean "profiles"?)',
      'w.yaml:3:3: redaction.hmac_kye: unknown key (did you mean "hmac_key"?)',
      'w.yaml:4:12: redaction.allow.literal: unknown key (did you mean "literals"?)',
      'w.yaml:5:32: redaction.custom_entities[0].patern: unknown key (did you mean "pattern"?)',
      'w.yaml:6:20: redaction.profiles.p.entites: unknown key (did you mean "entities"?)',
      'w.yaml:8:69: providers.o.timeouts.conect_ms: unknown key (did you mean "connect_ms"?)',
      'w.yaml:8:93: providers.o.pool.conections: unknown key (did you mean "connections"?)',
      'w.yaml:10:55: identity.spiffe.bundles["a.b"].jwks_fil: unknown key (did you mean "jwks_file"?)',
    ]);
  });

  it('a __proto__ key is refused wherever it is (a mapping of names would drop it silently)', () => {
    expect(lines('models:\n  __proto__: {x: 1}\n  echo: echo\n')).toEqual(['w.yaml:2:3: models.__proto__: "__proto__" cannot be used as a key']);
    expect(lines('models: {__proto__: echo}\nenvironment: {labels: {a: b, __proto__: x}}\n')).toEqual([
      'w.yaml:1:10: models.__proto__: "__proto__" cannot be used as a key',
      'w.yaml:2:30: environment.labels.__proto__: "__proto__" cannot be used as a key',
    ]);
    expect(lines('providers: {__proto__: {kind: echo}}\n')).toContain('w.yaml:1:13: providers.__proto__: "__proto__" cannot be used as a key');
    expect(lines('limits: {__proto__: 1}\n')).toEqual(['w.yaml:1:10: limits.__proto__: "__proto__" cannot be used as a key']);
  });

  it('a config of more than one YAML document says so, at the second one', () => {
    const one = 'the config file must hold one YAML document; found 2 (a "---" line starts another)';
    expect(lines('log: {level: info}\n---\nlog: {level: debug}\n')).toEqual([`w.yaml:2:1: (root): ${one}`]);
    // A trailing `---` (files concatenated) starts an empty second document.
    expect(lines('# c\nlog: {level: info}\n---\n')).toEqual([`w.yaml:3:1: (root): ${one}`]);
    expect(lines('a: 1\n---\nb: 2\n---\nc: 3\n')).toEqual(['w.yaml:2:1: (root): the config file must hold one YAML document; found 3 (a "---" line starts another)']);
  });

  it('unknown key without a near match', () => {
    expect(lines('audit:\n  colour: blue\n')).toEqual(['w.yaml:2:3: audit.colour: unknown key']);
  });

  it('bad listen addresses', () => {
    expect(lines('listen:\n  http: 127.0.0.1:99999\n  grpc: "::1:8701"\n  admin: 8702\n')).toEqual([
      'w.yaml:2:3: listen.http: port must be a number from 0 to 65535',
      'w.yaml:3:3: listen.grpc: IPv6 hosts must be bracketed, e.g. [::1]:8700',
      'w.yaml:4:3: listen.admin: must be a string, got a number',
    ]);
  });

  it('two listeners on one address or socket', () => {
    expect(lines('listen:\n  http: 127.0.0.1:9000\n  grpc: 127.0.0.1:9000\n  admin: 127.0.0.1:0\n  http_socket: a.sock\n  grpc_socket: a.sock\n')).toEqual([
      'w.yaml:3:3: listen.grpc: uses the same address as listen.http',
      'w.yaml:6:3: listen.grpc_socket: uses the same path as listen.http_socket',
    ]);
    expect(parseConfig('listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }', 'w.yaml').listen.grpc.port).toBe(0);
  });

  it('two socket paths written differently that are one path', () => {
    // The gRPC listener would meet the HTTP one's socket at start (before the start refused a
    // live socket, it removed it and took the path: the HTTP socket went dead without a word).
    const same = resolve('a.sock');
    for (const grpc of ['./a.sock', 'sub/../a.sock', same]) {
      expect(lines(`listen:\n  http_socket: a.sock\n  grpc_socket: ${grpc}\n`)).toEqual([`w.yaml:3:3: listen.grpc_socket: uses the same path as listen.http_socket (${same})`]);
    }
    expect(parseConfig('listen:\n  http_socket: a.sock\n  grpc_socket: b/a.sock\n', 'w.yaml').listen.grpc_socket).toBe(resolve('b/a.sock'));
    // One path through a symbolic link to its directory: the start would find its own HTTP
    // socket live there and blame another process.
    const dir = mkdtempSync(join(tmpdir(), 'warden-socklink-'));
    mkdirSync(join(dir, 'a'));
    symlinkSync(join(dir, 'a'), join(dir, 'b'));
    expect(lines(`listen:\n  http_socket: ${dir}/a/h.sock\n  grpc_socket: ${dir}/b/h.sock\n`)).toEqual([
      `w.yaml:3:3: listen.grpc_socket: uses the same path as listen.http_socket (${realpathSync(join(dir, 'a'))}/h.sock, through a symbolic link)`,
    ]);
    expect(parseConfig(`listen:\n  http_socket: ${dir}/a/h.sock\n  grpc_socket: ${dir}/b/g.sock\n`, 'w.yaml').listen.grpc_socket).toBe(`${dir}/b/g.sock`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('two listeners whose addresses overlap on one port: a wildcard covers its family, localhost only when both its addresses meet', () => {
    expect(lines('listen:\n  http: "[::]:9000"\n  grpc: 127.0.0.1:0\n  admin: localhost:9000\n')).toEqual([
      'w.yaml:4:3: listen.admin: localhost:9000 overlaps listen.http ([::]:9000): both would listen on port 9000 of 127.0.0.1',
    ]);
    // localhost is 127.0.0.1 or ::1, whichever the resolver gives first: next to either one alone
    // it may bind (and a bind that fails names its listener), so the config check lets it be.
    expect(parseConfig('listen:\n  http: localhost:9000\n  grpc: "[::1]:9000"\n  admin: 127.0.0.1:0\n', 'w.yaml').listen.grpc.port).toBe(9000);
    expect(parseConfig('listen:\n  http: localhost:9000\n  grpc: 127.0.0.1:9000\n  admin: 127.0.0.1:0\n', 'w.yaml').listen.grpc.port).toBe(9000);
    expect(lines('listen:\n  http: 0.0.0.0:9000\n  grpc: 127.0.0.1:9000\n  admin: "[::]:9000"\n')).toEqual([
      'w.yaml:3:3: listen.grpc: 127.0.0.1:9000 overlaps listen.http (0.0.0.0:9000): both would listen on port 9000 of 127.0.0.1',
      'w.yaml:4:3: listen.admin: [::]:9000 overlaps listen.http (0.0.0.0:9000): both would listen on port 9000 of 0.0.0.0',
    ]);
    // Different loopback addresses, or IPv4's wildcard and IPv6's loopback, can share a port.
    expect(parseConfig('listen:\n  http: 127.0.0.1:9000\n  grpc: 127.0.0.2:9000\n  admin: "[::1]:9000"\n', 'w.yaml').listen.admin.host).toBe('::1');
    expect(parseConfig('listen:\n  http: 0.0.0.0:9000\n  grpc: "[::1]:9000"\n  admin: 127.0.0.1:0\n', 'w.yaml').listen.grpc.port).toBe(9000);
  });

  it('wrong types and ranges', () => {
    expect(lines('limits:\n  max_body_bytes: -1\n  max_variables: 1.5\n  client_timeout_ms: "10"\nreload: { watch: yes }\n')).toEqual([
      'w.yaml:2:3: limits.max_body_bytes: must be greater than 0',
      'w.yaml:3:3: limits.max_variables: must be an integer, got a fractional number',
      'w.yaml:4:3: limits.client_timeout_ms: must be a number, got a string',
      'w.yaml:5:11: reload.watch: must be true or false, got a string',
    ]);
  });

  it('a non-finite number (.inf, .nan, 1e400) is named as such, not as "a fractional number" after "must be a number"', () => {
    // YAML reads `.inf`, `.nan` and a number past a double's range (`1e400`) as Infinity/NaN:
    // numbers to zod's type check, which refuses them as not numbers.
    expect(lines('limits:\n  max_body_bytes: 1e400\n  client_timeout_ms: -.inf\n  idle_timeout_ms: .nan\nenvironment: { name: .inf }\n')).toEqual([
      'w.yaml:2:3: limits.max_body_bytes: must be a finite number, got infinity (.inf, or a number too large to hold, such as 1e400)',
      'w.yaml:3:3: limits.client_timeout_ms: must be a finite number, got -infinity (-.inf, or a number too large to hold, such as -1e400)',
      'w.yaml:4:3: limits.idle_timeout_ms: must be a finite number, got .nan (not a number)',
      'w.yaml:5:16: environment.name: must be a string, got infinity (.inf, or a number too large to hold, such as 1e400)',
    ]);
  });

  it('every duration in ms is at most 2^31-1: a larger one would become a 1 ms timer', () => {
    const max = 'must be at most 2147483647 ms (about 24.8 days, the longest timer Node.js supports)';
    const text = [
      'policy: { timeout_ms: 3000000000 }',
      'secrets: { default_ttl_ms: 99999999999999, fetch_timeout_ms: 3000000000 }',
      'providers:',
      '  echo: { kind: echo }',
      '  up: { kind: openai, base_url: "https://x.example/v1", timeouts: { connect_ms: 3000000000, headers_ms: 3000000000, body_ms: 3000000000 } }',
      'limits: { client_timeout_ms: 3000000000, upstream_timeout_ms: 3000000000, shutdown_grace_ms: 3000000000 }',
      'reload: { debounce_ms: 1e12, poll_ms: 3000000000, timeout_ms: 3000000000 }',
    ].join('\n');
    expect(problems(text).map((p) => `${p.path}: ${p.message}`)).toEqual([
      `policy.timeout_ms: ${max}`,
      `secrets.default_ttl_ms: ${max}`,
      `secrets.fetch_timeout_ms: ${max}`,
      `providers.up.timeouts.connect_ms: ${max}`,
      `providers.up.timeouts.headers_ms: ${max}`,
      `providers.up.timeouts.body_ms: ${max}`,
      `limits.client_timeout_ms: ${max}`,
      `limits.upstream_timeout_ms: ${max}`,
      `limits.shutdown_grace_ms: ${max}`,
      `reload.debounce_ms: ${max}`,
      `reload.poll_ms: ${max}`,
      `reload.timeout_ms: ${max}`,
    ]);
    const ok = parseConfig('limits: { upstream_timeout_ms: 2147483647 }\nsecrets: { default_ttl_ms: 0 }\n', 'w.yaml');
    expect(ok.limits.upstream_timeout_ms).toBe(2147483647);
    expect(ok.secrets.default_ttl_ms).toBe(0);
  });

  it('an environment label may not be named name or cluster (they would be dropped silently)', () => {
    expect(lines('environment:\n  labels: { region: eu, name: prod, cluster: c }\n')).toEqual([
      'w.yaml:2:25: environment.labels.name: is not a valid key: it is reserved: input.environment.name and .cluster come from environment.name and environment.cluster',
      'w.yaml:2:37: environment.labels.cluster: is not a valid key: it is reserved: input.environment.name and .cluster come from environment.name and environment.cluster',
    ]);
  });

  it('more than 100 aliases is ordinary YAML; an alias bomb is config_invalid with a location', () => {
    const labels = Array.from({ length: 150 }, (_, i) => `    l${i}: *v`).join('\n');
    const ok = parseConfig(`environment:\n  name: &v staging\n  labels:\n${labels}\n`, 'w.yaml');
    expect(ok.environment.labels.l149).toBe('staging');
    const levels = ['x-a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [prev, next] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g']]) {
      levels.push(`x-${next}: &${next} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    expect(lines(levels.join('\n'))).toEqual([
      'w.yaml:2:10: (root): YAML: aliases expand too much (more than 1000 alias expansions); write the repeated values out, or use fewer nested anchors',
    ]);
  });

  it('a YAML 1.1 merge key is named as such, not only as an unknown key', () => {
    expect(lines('environment: &e { name: dev }\nlog:\n  level: info\nreload: { watch: false }\nlimits:\n  <<: { max_variables: 8 }\n')).toEqual([
      'w.yaml:6:3: limits["<<"]: unknown key: YAML merge keys ("<<: *anchor") are YAML 1.1, not read here; write the keys out (an alias of a whole value, "key: *anchor", works)',
    ]);
  });

  it('an alias with no anchor is reported as such, not as an alias bomb', () => {
    expect(lines('environment:\n  name: &env staging\n  labels: { team: *evn }\n')).toEqual([
      'w.yaml:3:19: (root): YAML: alias *evn has no anchor before it (anchors are written &name, before their first use)',
    ]);
  });

  it('max_json_depth is bounded: a limit deeper than the ceiling would let a body overflow the stack', () => {
    expect(lines('limits:\n  max_json_depth: 1001\n')).toEqual(['w.yaml:2:3: limits.max_json_depth: must be at most 1000']);
    expect(parseConfig('limits: { max_json_depth: 1000 }\n', 'w.yaml').limits.max_json_depth).toBe(1000);
  });

  it('max_json_values is at least 65536: no text of 64 KiB or less (which is not scanned) can hold more', () => {
    expect(lines('limits:\n  max_json_values: 65535\n')).toEqual(['w.yaml:2:3: limits.max_json_values: must be at least 65536']);
    expect(parseConfig('limits: { max_json_values: 65536 }\n', 'w.yaml').limits.max_json_values).toBe(65536);
  });

  it('secrets.cache.max_entries is bounded: the cache allocates room for every entry at start', () => {
    // 4294967296 was "Invalid array length" with no position, 1e9 ran out of heap.
    for (const n of ['4294967296', '1000000000', '100001']) {
      expect(lines(`secrets:\n  cache: { max_entries: ${n} }\n`)).toEqual([
        'w.yaml:2:12: secrets.cache.max_entries: must be at most 100000 (each entry is a secret ref a template names)',
      ]);
    }
    expect(parseConfig('secrets: { cache: { max_entries: 100000 } }\n', 'w.yaml').secrets.cache.max_entries).toBe(100_000);
  });

  it('enum values', () => {
    expect(lines('policy:\n  engine: opa\nlog: { level: loud, format: xml }\n')).toEqual([
      'w.yaml:2:3: policy.engine: must be one of "rego", "wasm"',
      'w.yaml:3:8: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
      'w.yaml:3:21: log.format: must be one of "json", "text"',
    ]);
  });

  it('the wasm engine is refused until it ships, not silently replaced', () => {
    expect(lines('policy:\n  engine: wasm\n')).toEqual([
      'w.yaml:2:3: policy.engine: the wasm engine is not available in this build yet; use engine: rego (the built-in Rego engine)',
    ]);
  });

  it('identity methods need their section; duplicates rejected', () => {
    expect(lines('identity:\n  methods: [kubernetes, dev, dev, spiffe, ldap]\n')).toEqual([
      'w.yaml:2:43: identity.methods[4]: must be one of "kubernetes", "dev", "spiffe"',
    ]);
    expect(lines('identity:\n  methods:\n    - kubernetes\n    - dev\n    - dev\n    - spiffe\n')).toEqual([
      'w.yaml:3:7: identity.methods[0]: method "kubernetes" needs an identity.kubernetes section',
      'w.yaml:4:7: identity.methods[1]: method "dev" must come last: it answers every request (a local caller is its principal, any other caller is refused), so the methods after it would never be tried',
      'w.yaml:5:7: identity.methods[2]: method "dev" is listed twice',
      'w.yaml:6:7: identity.methods[3]: method "spiffe" needs an identity.spiffe section',
    ]);
  });

  it('dev must be the last method: one after it would never be tried', () => {
    const k8s = '  kubernetes: { issuer: https://k8s, audiences: [warden], jwks_file: k.json }\n';
    expect(lines(`identity:\n  methods: [dev, kubernetes]\n${k8s}`)).toEqual([
      'w.yaml:2:13: identity.methods[0]: method "dev" must come last: it answers every request (a local caller is its principal, any other caller is refused), so the methods after it would never be tried',
    ]);
    expect(parseConfig(`identity:\n  methods: [kubernetes, dev]\n${k8s}`, 'w.yaml', {}).identity.methods).toEqual(['kubernetes', 'dev']);
    expect(parseConfig('identity:\n  methods: [dev]\n', 'w.yaml', {}).identity.methods).toEqual(['dev']);
  });

  it('kubernetes: missing keys point at the section, jwks source exactly one', () => {
    expect(
      lines('identity:\n  methods: [kubernetes]\n  kubernetes:\n    audiences: []\n    jwks_url: file:///x\n    jwks_file: k.json\n'),
    ).toEqual([
      'w.yaml:3:3: identity.kubernetes.issuer: is required',
      'w.yaml:3:3: identity.kubernetes: set exactly one of jwks_url or jwks_file',
      'w.yaml:4:5: identity.kubernetes.audiences: must list at least one audience',
      'w.yaml:5:5: identity.kubernetes.jwks_url: must be an http(s) URL',
    ]);
    expect(lines('identity:\n  methods: [kubernetes]\n  kubernetes:\n    issuer: https://k\n    audiences: [w]\n')).toEqual([
      'w.yaml:3:3: identity.kubernetes: set exactly one of jwks_url or jwks_file',
    ]);
  });

  it('spiffe: trust domains, audiences and one jwks source; jwks paths resolve', () => {
    expect(lines('identity:\n  methods: [spiffe]\n  spiffe:\n    trust_domains: []\n    issuer: [1]\n')).toEqual([
      'w.yaml:3:3: identity.spiffe.audiences: is required',
      'w.yaml:3:3: identity.spiffe: set exactly one of jwks_url or jwks_file',
      'w.yaml:4:5: identity.spiffe.trust_domains: must list at least one trust domain',
      'w.yaml:5:5: identity.spiffe.issuer: must be a string or a list of strings',
    ]);
    const c = parseConfig(
      'identity:\n  methods: [spiffe, kubernetes]\n  spiffe: { trust_domains: [prod.example], audiences: [warden], jwks_file: b.json }\n' +
        '  kubernetes: { issuer: [a, b], audiences: [w], jwks_url: "https://kubernetes.default.svc/openid/v1/jwks", jwks_ca_file: ca.crt, jwks_bearer_token_file: tok }\n',
      '/c/w.yaml',
    ).identity;
    expect(c.spiffe).toEqual({ trust_domains: ['prod.example'], audiences: ['warden'], jwks_file: '/c/b.json', clock_tolerance_s: 5 });
    expect(c.kubernetes).toMatchObject({ issuer: ['a', 'b'], jwks_ca_file: '/c/ca.crt', jwks_bearer_token_file: '/c/tok' });
    expect(lines('identity:\n  kubernetes: { issuer: i, audiences: [w], jwks_file: f, jwks_urll: x }\n')).toEqual([
      'w.yaml:2:58: identity.kubernetes.jwks_urll: unknown key (did you mean "jwks_url"?)',
    ]);
  });

  it('dev: the principal is a Kubernetes namespace (DNS-1123 label) and service account (DNS-1123 subdomain)', () => {
    const dev = (ns: string, sa: string) => `identity:\n  methods: [dev]\n  dev: { principal: { namespace: "${ns}", service_account: "${sa}" } }\n`;
    expect(parseConfig(dev('team-a', 'ticket-bot.v2'), 'w.yaml').identity.dev.principal).toEqual({ namespace: 'team-a', service_account: 'ticket-bot.v2' });
    expect(parseConfig(dev('n'.repeat(63), `${'s'.repeat(63)}.${'s'.repeat(63)}.${'s'.repeat(63)}.${'s'.repeat(61)}`), 'w.yaml').identity.dev.principal.namespace).toHaveLength(63);
    const ns = "must be a Kubernetes namespace name (a DNS-1123 label): at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit";
    const sa =
      "must be a Kubernetes service account name (a DNS-1123 subdomain): at most 253 characters, labels of lower-case letters, digits and '-' separated by '.', each starting and ending with a letter or digit";
    const cases: Array<[string, string, string[]]> = [
      ['Team', 'bot', [`identity.dev.principal.namespace: ${ns}`]],
      ['team.a', 'bot', [`identity.dev.principal.namespace: ${ns}`]],
      ['-team', 'bot', [`identity.dev.principal.namespace: ${ns}`]],
      ['n'.repeat(64), 'bot', [`identity.dev.principal.namespace: ${ns}`]],
      ['team', 'bot_1', [`identity.dev.principal.service_account: ${sa}`]],
      ['team', 'bot.', [`identity.dev.principal.service_account: ${sa}`]],
      ['team', 'a..b', [`identity.dev.principal.service_account: ${sa}`]],
      ['team', 's'.repeat(254), [`identity.dev.principal.service_account: ${sa}`]],
      ['team:x', 'bot/y', [`identity.dev.principal.namespace: ${ns}`, `identity.dev.principal.service_account: ${sa}`]],
      ['', '', ['identity.dev.principal.namespace: must not be empty', 'identity.dev.principal.service_account: must not be empty']],
    ];
    for (const [n, s, expected] of cases) {
      expect(problems(dev(n, s)).map((p) => `${p.path}: ${p.message}`), `${n} / ${s}`).toEqual(expected);
    }
  });

  it('kubernetes: each allowed namespace is a Kubernetes namespace name (DNS-1123 label)', () => {
    const k8s = (list: string) => `identity:\n  kubernetes: { issuer: i, audiences: [w], jwks_file: f, namespaces: ${list} }\n`;
    expect(parseConfig(k8s(`[team-a, "${'n'.repeat(63)}", "0"]`), 'w.yaml').identity.kubernetes?.namespaces).toEqual(['team-a', 'n'.repeat(63), '0']);
    const ns = "must be a Kubernetes namespace name (a DNS-1123 label): at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit";
    // A namespace that can never appear in a token would silently refuse every workload it was meant to admit.
    expect(lines(k8s(`[ok, "Prod ", "a/b", "", team.a, "${'n'.repeat(64)}", "-x"]`))).toEqual([
      `w.yaml:2:75: identity.kubernetes.namespaces[1]: ${ns}`,
      `w.yaml:2:84: identity.kubernetes.namespaces[2]: ${ns}`,
      'w.yaml:2:91: identity.kubernetes.namespaces[3]: must not be empty',
      `w.yaml:2:95: identity.kubernetes.namespaces[4]: ${ns}`,
      `w.yaml:2:103: identity.kubernetes.namespaces[5]: ${ns}`,
      `w.yaml:2:171: identity.kubernetes.namespaces[6]: ${ns}`,
    ]);
  });

  it('spiffe: several trust domains need a bundle each; bundle paths resolve', () => {
    expect(lines('identity:\n  spiffe: { trust_domains: [a.example, b.example], audiences: [w], jwks_file: b.json }\n')).toEqual([
      'w.yaml:2:13: identity.spiffe.trust_domains: one key set cannot serve several trust domains (any of them could sign for the others): give each its own under identity.spiffe.bundles',
    ]);
    expect(lines('identity:\n  spiffe:\n    audiences: [w]\n    trust_domains: [a.example]\n    jwks_file: x.json\n    bundles: { "B.example": { jwks_file: b.json }, c.example: {} }\n')).toEqual([
      'w.yaml:2:3: identity.spiffe: with bundles, each trust domain\'s key set goes under its bundle',
      'w.yaml:4:5: identity.spiffe.trust_domains: set trust_domains (with the section\'s key set) or bundles, not both',
      'w.yaml:6:16: identity.spiffe.bundles["B.example"]: is not a valid key: it must be a trust domain name (lower-case letters, digits, ".", "-", "_")',
      'w.yaml:6:52: identity.spiffe.bundles["c.example"]: set exactly one of jwks_url or jwks_file',
    ]);
    const c = parseConfig('identity:\n  spiffe:\n    audiences: [w]\n    bundles: { a.example: { jwks_file: a.json }, b.example: { jwks_url: "https://b/keys", jwks_ca_file: ca.pem } }\n', '/c/w.yaml').identity;
    expect(c.spiffe?.bundles).toEqual({ 'a.example': { jwks_file: '/c/a.json' }, 'b.example': { jwks_url: 'https://b/keys', jwks_ca_file: '/c/ca.pem' } });
  });

  it('spiffe: kubernetes_trust_domains must name accepted trust domains', () => {
    const spiffe = (extra: string) => `identity:\n  spiffe:\n    audiences: [w]\n    bundles: { a.example: { jwks_file: a.json }, b.example: { jwks_file: b.json } }\n    ${extra}\n`;
    expect(lines(spiffe('kubernetes_trust_domains: [a.example, c.example]'))).toEqual([
      'w.yaml:5:43: identity.spiffe.kubernetes_trust_domains[1]: c.example is not an accepted trust domain (trust_domains or bundles)',
    ]);
    expect(parseConfig(spiffe('kubernetes_trust_domains: [a.example]'), '/c/w.yaml').identity.spiffe?.kubernetes_trust_domains).toEqual(['a.example']);
  });

  it('providers: unknown kind, bad url, literal api key (never echoed)', () => {
    const canary = 'sk-CANARY-SECRET-9f8e7d';
    const text = [
      'providers:',
      '  echo: { kind: echo }',
      `  up: { kind: openai, base_url: "ftp://x", api_key: "${canary}" }`,
      '  odd: { kind: anthropic }',
      '  flat: echo',
      'models: { echo: echo }',
    ].join('\n');
    const out = lines(text);
    expect(out).toEqual([
      'w.yaml:3:23: providers.up.base_url: must be an http(s) URL such as https://api.openai.com/v1',
      'w.yaml:3:44: providers.up.api_key: must be a secret ref such as env://NAME, file:relative/path or file:///abs/path, not a literal value',
      'w.yaml:4:10: providers.odd.kind: must be one of "echo", "openai"',
      'w.yaml:5:3: providers.flat: must be a mapping, got a string',
    ]);
    expect(out.join('\n')).not.toContain('CANARY');
  });

  it('providers: credentials in base_url are refused (they would be dropped on the wire), never echoed', () => {
    const rule = 'must not carry credentials (user:password@): they are never sent; put the API key in api_key as a secret ref';
    const text = [
      'providers:',
      '  echo: { kind: echo }',
      '  a: { kind: openai, base_url: "http://proxyuser:CANARY-PROXY-PW@127.0.0.1:9/v1" }',
      '  b: { kind: openai, base_url: "https://CANARY-USER-ONLY@api.example/v1" }',
      '  c: { kind: openai, base_url: "https://:CANARY-PW-ONLY@api.example/v1" }',
      'models: { echo: echo }',
    ].join('\n');
    const out = lines(text);
    expect(out).toEqual([`w.yaml:3:22: providers.a.base_url: ${rule}`, `w.yaml:4:22: providers.b.base_url: ${rule}`, `w.yaml:5:22: providers.c.base_url: ${rule}`]);
    expect(out.join('\n')).not.toContain('CANARY');
    // An @ in the path or query is no credential.
    expect(parseConfig('providers:\n  up: { kind: openai, base_url: "https://api.example/v1/@team?u=a@b" }\nmodels: { echo: up }\n', 'w.yaml').providers.up).toMatchObject({ base_url: 'https://api.example/v1/@team?u=a@b' });
  });

  it('models pointing at an unknown provider, reported alongside other problems', () => {
    expect(lines('providers:\n  echo: { kind: echo }\nmodels:\n  gpt-4.1: openai\n  echo: echo\nlog: { level: 3 }\n')).toEqual([
      'w.yaml:4:3: models["gpt-4.1"]: unknown provider "openai" (configured providers: "echo")',
      'w.yaml:6:8: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    ]);
  });

  it('a secret pasted where a key or a provider name goes is described, never repeated', () => {
    const key = 'sk-proj-CANARYabcdefghijklmnopqrstuvwxyz0123';
    const hidden = '(name not shown: it looks like a literal secret (OpenAI/Anthropic-style API key))';
    // In a flow mapping a lone scalar is a key (`{ …, api_key: env://X, sk-… }` with the name of
    // the key forgotten), at the top level or quoted too.
    const out = lines(
      [
        'providers:',
        `  up: { kind: openai, base_url: "https://x/v1", api_key: env://X, ${key} }`,
        `  "Bearer ${key}": { kind: echo }`,
        'models:',
        `  echo: up`,
        `  gpt-4o: "${key}"`,
        `${key}: 1`,
      ].join('\n'),
    );
    expect(out).toEqual([
      `w.yaml:2:67: providers.up[${hidden}]: unknown key`,
      `w.yaml:3:3: providers[${hidden}]: is not a valid key: it provider names use letters, digits, _ . -`,
      `w.yaml:6:3: models.gpt-4o: unknown provider ${hidden} (configured providers: "up")`,
      `w.yaml:7:1: [${hidden}]: unknown key`,
    ]);
    expect(out.join('\n')).not.toContain('CANARY');
    // A name that only looks unusual is still shown as written.
    expect(lines('models:\n  gpt-4.1: openai-eu\n')).toEqual(['w.yaml:2:3: models["gpt-4.1"]: unknown provider "openai-eu" (configured providers: "echo")']);
  });

  it('models: a name no request could carry is refused, named with its invisible characters escaped', () => {
    // Upper case, spaces and punctuation are model names requests may carry (matched exactly).
    expect(Object.keys(parseConfig('models:\n  "GPT-4o": echo\n  "Org/Model 7B:q4": echo\n', 'w.yaml').models)).toEqual(['GPT-4o', 'Org/Model 7B:q4']);
    const rule = 'is not a valid key: it must be 1 to 256 characters, without control or invisible format characters';
    expect(lines(`models:\n  ok: echo\n  "gpt\\u200b4o": echo\n  "tab\\tname": echo\n  "": echo\n  ${'x'.repeat(257)}: echo\n  "a\\u2028b\\u202e": echo\n`)).toEqual([
      `w.yaml:3:3: models["gpt\\u200b4o"]: ${rule}`,
      `w.yaml:4:3: models["tab\\tname"]: ${rule}`,
      `w.yaml:5:3: models[""]: ${rule}`,
      // 257 letters in a row: no name, so not repeated (it may be a pasted value).
      `w.yaml:6:3: models[(name not shown: it looks like a generated value (a key, token or password), not a name)]: ${rule}`,
      `w.yaml:7:3: models["a\\u2028b\\u202e"]: ${rule}`,
    ]);
  });

  it('the default models map needs the echo provider when providers are replaced', () => {
    expect(lines('providers:\n  up: { kind: openai, base_url: "https://x/v1" }\n')).toEqual([
      'w.yaml:1:1: models.echo: unknown provider "echo" (configured providers: "up")',
    ]);
  });

  it('audit sinks', () => {
    expect(lines('audit:\n  sinks: [stdout, { fil: x }, 3]\n  required: "no"\n')).toEqual([
      'w.yaml:2:19: audit.sinks[1]: must be "stdout" or { file: PATH }',
      'w.yaml:2:31: audit.sinks[2]: must be "stdout" or { file: PATH }',
      'w.yaml:3:3: audit.required: must be true or false, got a string',
    ]);
    // No sink at all: every record would go nowhere (was a bare "audit: at least one sink" at start).
    expect(lines('audit:\n  sinks: []\n')).toEqual(['w.yaml:2:3: audit.sinks: needs at least one sink: "stdout" or { file: PATH }']);
  });

  it('policy entrypoint format and secrets section', () => {
    expect(lines('policy: { entrypoint: "warden decision" }\n')).toEqual(['w.yaml:1:11: policy.entrypoint: must be a slash-separated rule path such as warden/decision']);
    expect(lines('policy: { entrypoint: "data.warden.decision" }\nsecrets: { cache: { max_entries: 0 } }\n')).toEqual([
      'w.yaml:1:11: policy.entrypoint: must be the slash-separated rule path below data: write warden/decision',
      'w.yaml:2:21: secrets.cache.max_entries: must be greater than 0',
    ]);
  });

  it('redaction profiles and custom entities are shape-checked: a threshold of 85 or a mistyped key is refused', () => {
    expect(
      lines(
        'redaction:\n  profiles:\n    p:\n      entities: [EMAIL_ADDRESS]\n      settings: { EMAIL_ADDRESS: { threshold: 85 }, PHONE_NUMBER: { treshold: 0.4 } }\n      modee: mask\n' +
          '  custom_entities:\n    - { name: customer_id, pattern: "C-\\\\d+", flags: gx, score: high }\n',
      ),
    ).toEqual([
      'w.yaml:5:36: redaction.profiles.p.settings.EMAIL_ADDRESS.threshold: must be between 0 and 1',
      'w.yaml:5:69: redaction.profiles.p.settings.PHONE_NUMBER.treshold: unknown key (did you mean "threshold"?)',
      'w.yaml:6:7: redaction.profiles.p.modee: unknown key (did you mean "mode"?)',
      'w.yaml:8:9: redaction.custom_entities[0].name: must be an upper-case entity name such as CUSTOMER_ID',
      'w.yaml:8:47: redaction.custom_entities[0].flags: may hold only the RE2 flags i, m, s, u',
      'w.yaml:8:58: redaction.custom_entities[0].score: must be a number, got a string',
    ]);
  });

  it('redaction is shape-checked; a mistyped key is refused, not ignored', () => {
    const c = parseConfig('redaction:\n  default_profile: strict\n  profiles: { strict: { entities: [EMAIL] } }\n  phone_validation: possible\n', 'w.yaml');
    expect(c.redaction).toMatchObject({ default_profile: 'strict', phone_validation: 'possible' });
    expect(lines('redaction:\n  hmac_key: plainkey\n  phone_regions: [us]\n  profiles: []\n  phone_validaton: possible\n')).toEqual([
      'w.yaml:2:3: redaction.hmac_key: must be a secret ref such as env://NAME, file:relative/path or file:///abs/path, not a literal value',
      'w.yaml:3:19: redaction.phone_regions[0]: must be a two-letter region code such as US',
      'w.yaml:4:3: redaction.profiles: must be a mapping, got a list',
      'w.yaml:5:3: redaction.phone_validaton: unknown key (did you mean "phone_validation"?)',
    ]);
  });

  it('redaction.stream_secret_hold is window or prefix; another value is refused by name', () => {
    expect(parseConfig('redaction:\n  stream_secret_hold: prefix\n', 'w.yaml').redaction).toMatchObject({ stream_secret_hold: 'prefix' });
    const [line] = lines('redaction:\n  stream_secret_hold: prefixes\n');
    expect(line).toBe('w.yaml:2:3: redaction.stream_secret_hold: must be one of "window", "prefix"');
  });

  it('YAML syntax errors and duplicate keys', () => {
    const syntax = problems('listen:\n  http: [\n');
    expect(syntax[0]).toMatchObject({ file: '/etc/warden/w.yaml', path: '(root)' });
    expect(syntax[0]?.line).toBeGreaterThanOrEqual(2);
    expect(syntax[0]?.message).toMatch(/^YAML syntax: /);
    // The library's messages that quote the file (a block scalar header, a stray token) say what is wrong without it.
    const pasted = 'AKIAIOSFODNN7EXAMPLE';
    for (const text of [`log:\n  level: |${pasted}\n    info\n`, `log: ]${pasted}\n`]) {
      const found = lines(text).join('\n');
      expect(found).toMatch(/YAML syntax: .*\(.*its text is not repeated\)/);
      expect(found).not.toContain(pasted.slice(0, 8));
    }
    // A repeated key is named by its key path, with where it was first set.
    expect(lines('log: { level: info }\nlog: { level: warn }\n')).toEqual(['w.yaml:2:1: log: duplicate key: already set at line 1, column 1 (keys must be unique)']);
    expect(lines('environment:\n  name: dev\n  labels: { team: a, "team": b }\n  name: prod\n')).toEqual([
      'w.yaml:3:22: environment.labels.team: duplicate key: already set at line 3, column 13 (keys must be unique)',
      'w.yaml:4:3: environment.name: duplicate key: already set at line 2, column 3 (keys must be unique)',
    ]);
    expect(lines('identity:\n  kubernetes: { audiences: [{ a: 1, a: 2 }] }\n')).toEqual([
      'w.yaml:2:37: identity.kubernetes.audiences[0].a: duplicate key: already set at line 2, column 31 (keys must be unique)',
    ]);
    // Checked in one pass (a Set per mapping), not by the yaml library's pairwise check.
    const many = Array.from({ length: 50_000 }, (_, i) => `  k${i}: ${i}\n`).join('');
    expect(lines(`extra:\n${many}`)).toEqual(['w.yaml:1:1: extra: unknown key']);
    expect(lines(`extra:\n${many}  k49999: 1\n`)).toEqual(['w.yaml:50002:3: extra.k49999: duplicate key: already set at line 50001, column 3 (keys must be unique)']);
  });

  it('a key that would name another thing than written is refused: a number read as other text, or two keys read as one name', () => {
    // `1.10:` would configure model "1.1" (requests for "1.10" find nothing); `0x10:` "16"; `~:` "".
    const asWritten = 'a key written as a number, true/false or null is read as other text (1.10 as "1.1", 0x10 as "16", ~ as ""): quote it to keep it as written';
    expect(lines('models:\n  1.10: echo\n')).toEqual([`w.yaml:2:3: models["1.1"]: ${asWritten}`]);
    expect(lines('models: { 2.0: echo, 0x10: echo, True: echo }\n')).toEqual([
      `w.yaml:1:11: models["2"]: ${asWritten}`,
      `w.yaml:1:22: models["16"]: ${asWritten}`,
      `w.yaml:1:34: models.true: ${asWritten}`,
    ]);
    expect(lines('environment:\n  labels: { ~: a, 01: b }\n')).toEqual([`w.yaml:2:13: environment.labels[""]: ${asWritten}`, `w.yaml:2:19: environment.labels["1"]: ${asWritten}`]);
    // Different YAML keys, one property: the last would win without a word.
    const twice = (line: number, column: number) => `duplicate key: already set at line ${line}, column ${column}, written another way (1 and "1" name one key; keys must be unique)`;
    expect(lines('models:\n  1: echo\n  "1": echo\n')).toEqual([`w.yaml:3:3: models["1"]: ${twice(2, 3)}`]);
    expect(lines('environment:\n  labels: { "true": a, true: b }\n')).toEqual([`w.yaml:2:24: environment.labels.true: ${twice(2, 13)}`]);
    // Written as they read, they load: a number key that is its own text, quoted keys.
    const c = parseConfig('models: { 1: echo, "1.10": echo, "0x10": echo }\nenvironment: { labels: { 7: a, "true": b } }\n', 'w.yaml', {});
    expect(Object.keys(c.models).sort()).toEqual(['0x10', '1', '1.10']);
    expect(c.environment.labels).toEqual({ 7: 'a', true: 'b' });
  });

  describe('a secret of no known shape (an Azure key, a random password, a long number) is never repeated', () => {
    const SECRETS = ['a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6', 'Qx9vTn4Kp2Lm8Rw7', 'Tn4Kp2Lm8Rw7', 'zqxvtnkplmrwhbgfdsaqwert', '12345678901234567890'];
    const GENERATED = '(name not shown: it looks like a generated value (a key, token or password), not a name)';

    for (const secret of SECRETS) {
      it(`${secret.slice(0, 6)}…: as a key (unknown, in a flow mapping, repeated), a model name, a tag and an alias`, () => {
        const texts = [
          `providers:\n  up:\n    kind: openai\n    base_url: https://x/v1\n    ${secret}: x\nmodels: { m: up }\n`,
          `providers:\n  up: { kind: openai, base_url: "https://x/v1", api_key: env://X, ${secret} }\nmodels: { m: up }\n`,
          `providers:\n  up:\n    kind: openai\n    ${secret}: 1\n    ${secret}: 2\n`,
          `models:\n  ${secret}: { provider: echo }\n`,
          `models:\n  m: "${secret}"\n`,
          `log:\n  level: !${secret} x\n`,
          `log:\n  level: *${secret}\n`,
          `"${secret}": 1\n`,
        ];
        for (const text of texts) {
          const out = lines(text).join('\n');
          expect(out, text).not.toContain(secret);
          expect(out, text).toMatch(/not shown/);
        }
        expect(lines(`log: { ${secret} }\n`)[0]).toMatch(`w.yaml:1:8: log[${GENERATED}]: `);
      });
    }

    it('every key and value of the example config replaced by one, in each way YAML can misread it: no message repeats it', () => {
      const C = 'Qx9vTn4Kp2Lm8Rw7';
      const base = readFileSync(resolve(import.meta.dirname, '../../deploy/local/warden.yaml'), 'utf8');
      const spots: Array<[number, number, boolean]> = [];
      visit(parseDocument(base), {
        Pair(_k, pair) {
          if (isScalar(pair.key) && pair.key.range) spots.push([pair.key.range[0], pair.key.range[1], true]);
          if (isScalar(pair.value) && pair.value.range) spots.push([pair.value.range[0], pair.value.range[1], false]);
        },
      });
      expect(spots.length).toBeGreaterThan(20);
      const leaks: string[] = [];
      for (const [a, b, isKey] of spots) {
        const ways = isKey ? [C, `"${C}"`] : [C, `[${C}]`, `{ ${C}: 1 }`, `{ ${C} }`, `!${C} x`, `*${C}`, `"${C}\\q"`, `"http://u:${C}@h/v1"`, `"${C}`, `'${C}`, `@${C}`, `%${C}`, `${C}: x`];
        for (const v of ways) {
          let said = '';
          try {
            parseConfig(base.slice(0, a) + v + base.slice(b), 'w.yaml', {}, { onWarning: (w) => void (said += w) });
          } catch (err) {
            said += (err as Error).message;
          }
          if (said.includes(C)) leaks.push(`${base.slice(a, b)} -> ${v}: ${said}`);
        }
      }
      expect(leaks.slice(0, 3)).toEqual([]);
    });

    it('names keep being shown: a typo, dated and versioned model names', () => {
      expect(lines('log: { levle: info }\n')).toEqual(['w.yaml:1:8: log.levle: unknown key (did you mean "level"?)']);
      expect(lines('models:\n  gpt-4o-mini-2024-07-18: nope\n  claude-3-5-sonnet-20241022: nope\n')).toEqual([
        'w.yaml:2:3: models.gpt-4o-mini-2024-07-18: unknown provider "nope" (configured providers: "echo")',
        'w.yaml:3:3: models.claude-3-5-sonnet-20241022: unknown provider "nope" (configured providers: "echo")',
      ]);
    });
  });

  it('a YAML tag Warden does not implement is refused where it is written, not read as a plain value', () => {
    // An operator who writes `!vault` expects a lookup; reading the path as a literal would be wrong.
    expect(lines('environment:\n  name: !vault secret/env\n  labels: { team: !include team.yaml, blob: !!binary aGk= }\n')).toEqual([
      'w.yaml:2:9: (root): unknown YAML tag !vault',
      'w.yaml:3:19: (root): unknown YAML tag !include',
      'w.yaml:3:45: (root): unknown YAML tag !!binary',
    ]);
    expect(lines('log: !Ref Logging\n')).toEqual(['w.yaml:1:6: (root): unknown YAML tag !Ref']);
    // A tag that may be a pasted credential is not repeated, whether unknown or unresolvable.
    expect(lines('log: !AKIAIOSFODNN7EXAMPLE x\n')).toEqual(['w.yaml:1:6: (root): unknown YAML tag (tag not shown: it looks like a literal secret (AWS access key id))']);
    expect(lines('log: !e!AKIAIOSFODNN7EXAMPLE x\n').join('\n')).not.toContain('AKIAIOSFODNN7EXAMPLE');
    // The YAML 1.2 core tags still mean what they say.
    const ok = parseConfig('environment: !!map\n  name: !!str staging\n  labels: { n: !!str 1 }\n', 'w.yaml');
    expect(ok.environment.name).toBe('staging');
    expect(ok.environment.labels.n).toBe('1');
  });

  it('a document that is not a mapping', () => {
    expect(lines('- a\n- b\n')).toEqual(['w.yaml:1:1: (root): must be a mapping of keys to values']);
  });

  it('a file that is not UTF-8, or holds a NUL, is refused at the first bad byte (not read with U+FFFD or the NUL kept)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-config-utf8-'));
    const file = join(dir, 'w.yaml');
    writeFileSync(file, Buffer.concat([Buffer.from('log: { level: info }\nenvironment: { name: "t'), Buffer.from([0xff, 0xfe]), Buffer.from('" }\n')]));
    expect(() => loadConfig(file, {})).toThrow(`${file}:2:24: (root): not valid UTF-8`);
    writeFileSync(file, 'environment: { name: test, cluster: "c\u0000x" }\n');
    expect(() => loadConfig(file, {})).toThrow(`${file}:1:39: (root): control character U+0000 is not allowed`);
    // Tab, CR and LF are the control characters YAML allows.
    writeFileSync(file, 'environment:\r\n  name: ok\t\r\n');
    expect(loadConfig(file, {}).environment.name).toBe('ok');
  });

  it('a control character written as a YAML escape is refused at its value, like a raw one', () => {
    expect(lines('environment: { name: test, cluster: "c\\x00x" }\nidentity:\n  kubernetes: { issuer: "https://kube\\0rnetes", jwks_file: j.json }\n')).toEqual([
      'w.yaml:1:37: environment.cluster: control character U+0000 is not allowed (of the control characters only tab, line feed and carriage return are; this one is written as an escape)',
      'w.yaml:3:25: identity.kubernetes.issuer: control character U+0000 is not allowed (of the control characters only tab, line feed and carriage return are; this one is written as an escape)',
    ]);
    expect(lines('environment: { labels: { "a\\eb": x } }\n')[0]).toMatch(/^w\.yaml:1:26: environment\.labels\["a\\u001bb"\]: control character U\+001B /);
    expect(lines('environment: { name: test, cluster: "c\\x9bx" }\n')[0]).toMatch(/^w\.yaml:1:37: environment\.cluster: control character U\+009B /);
    // Tab, line feed and carriage return escapes stay allowed.
    expect(parseConfig('environment: { labels: { a: "x\\ty\\r\\n" } }\n', 'w.yaml').environment.labels.a).toBe('x\ty\r\n');
  });

  it('a key that is a list or a mapping is refused at the key, and the yaml library prints no warning about it', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      expect(lines('log: { level: info }\n? [a, b]\n: x\nenvironment:\n  { ? { k: AKIAIOSFODNN7EXAMPLE } : v }\n')).toEqual([
        'w.yaml:2:3: (root): a key must be a plain value (a word or a quoted string), not a list or a mapping',
        'w.yaml:5:7: environment: a key must be a plain value (a word or a quoted string), not a list or a mapping',
      ]);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('a file larger than 1 MiB is refused before it is read, with its size (one of tens of MB took seconds and gigabytes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-config-big-'));
    const file = join(dir, 'w.yaml');
    const head = 'environment:\n  name: big\n  cluster: "';
    const MAX_CONFIG_BYTES = 1024 * 1024; // README, "Configuration"
    // Exactly at the cap: read.
    writeFileSync(file, `${head}${'a'.repeat(MAX_CONFIG_BYTES - head.length - 2)}"\n`);
    expect(loadConfig(file, {}).environment.name).toBe('big');
    // One byte more: refused, by size, not content.
    writeFileSync(file, `${head}${'a'.repeat(MAX_CONFIG_BYTES - head.length - 1)}"\n`);
    expect(() => loadConfig(file, {})).toThrow(`${file}: (root): the file is 1048577 bytes; a config file may be at most 1 MiB (1048576 bytes)`);
  });

  it('a missing file', () => {
    expect(() => loadConfig('/nonexistent/warden.yaml', {})).toThrow(
      /\/nonexistent\/warden\.yaml: \(root\): cannot read the file \(ENOENT\)/,
    );
  });
});

describe('RE2 patterns in the redaction section', () => {
  it('a pattern RE2 cannot compile is a config problem at its key, naming the RE2 error but no part of the pattern', () => {
    const text = [
      'redaction:',
      '  custom_entities:',
      '    - { name: EMPLOYEE_ID, pattern: "(CANARY-SECRET-7f3a" }',
      '    - name: BADGE',
      '      pattern: "ok-[0-9]+"',
      '  allow:',
      '    patterns: ["CANARYZ-[Y-S]", "fine-[0-9]+", "CANARYQ)(?:x"]',
      '',
    ].join('\n');
    const found = problems(text);
    expect(found).toEqual([
      { file: '/etc/warden/w.yaml', line: 3, column: 28, path: 'redaction.custom_entities[0].pattern', message: 'is not a valid RE2 pattern (missing ))' },
      { file: '/etc/warden/w.yaml', line: 7, column: 16, path: 'redaction.allow.patterns[0]', message: 'is not a valid RE2 pattern (invalid character class range)' },
      // Valid once wrapped as the allow-list anchors it (`^(?:…)$`), but only by closing the anchor's group early.
      { file: '/etc/warden/w.yaml', line: 7, column: 48, path: 'redaction.allow.patterns[2]', message: 'is not a valid RE2 pattern (unexpected ))' },
    ]);
    expect(JSON.stringify(found)).not.toMatch(/CANARY|Y-S/);
  });
});

describe('warnings', () => {
  it('non-loopback listeners, dev identity, audit not required, plain-http upstream', () => {
    const warnings: string[] = [];
    parseConfig(
      [
        'listen: { http: 0.0.0.0:8700 }',
        'identity: { methods: [dev] }',
        'policy: { paths: [p] }',
        'audit: { required: false }',
        'providers: { echo: { kind: echo }, up: { kind: openai, base_url: "http://10.0.0.5/v1" } }',
      ].join('\n'),
      'w.yaml',
      {},
      { onWarning: (w) => warnings.push(w) },
    );
    expect(warnings).toEqual([
      'listen.http 0.0.0.0:8700 is not a loopback address: other hosts can reach this listener',
      'identity method "dev" is enabled: loopback and Unix-socket callers act as dev/local without a token; never use it in production',
      'audit.required is false: requests proceed when the audit record cannot be written',
      'providers.up.base_url uses plain http to a non-loopback host: the API key and prompts travel unencrypted',
    ]);
  });

  it('a key set fetched over plain http from another host is warned about (anyone on the path could sign any identity), loopback and https are not', () => {
    const warnings = (identity: string) => configWarnings(parseConfig(`identity:\n${identity}`, 'w.yaml', {})).filter((w) => w.includes('jwks_url'));
    expect(
      warnings(
        '  methods: [kubernetes, spiffe]\n' +
          '  kubernetes: { issuer: https://k8s, audiences: [warden], jwks_url: "http://10.96.0.1/openid/v1/jwks", jwks_bearer_token_file: /var/run/token }\n' +
          '  spiffe:\n    audiences: [warden]\n    bundles:\n' +
          '      prod.example: { jwks_url: "http://spire.prod.example/keys" }\n' +
          '      local.example: { jwks_url: "http://127.0.0.1:8443/keys" }\n' +
          '      tls.example: { jwks_url: "https://spire.tls.example/keys" }\n',
      ),
    ).toEqual([
      'identity.kubernetes.jwks_url uses plain http to a non-loopback host: whoever is on the path can serve keys of their own and sign tokens for any identity, and the jwks_bearer_token_file token travels unencrypted',
      'identity.spiffe.bundles["prod.example"].jwks_url uses plain http to a non-loopback host: whoever is on the path can serve keys of their own and sign tokens for any identity',
    ]);
    // A section whose method is not listed fetches nothing.
    expect(warnings('  methods: []\n  kubernetes: { issuer: https://k8s, audiences: [warden], jwks_url: "http://10.96.0.1/jwks" }\n')).toEqual([]);
    expect(warnings('  methods: [kubernetes]\n  kubernetes: { issuer: https://k8s, audiences: [warden], jwks_url: "http://[::1]:8080/jwks" }\n')).toEqual([]);
  });

  it('a credential in the query of a provider base_url (Gemini key=, Azure Functions code=): warned about, its value never repeated', () => {
    const KEY = 'AIzaSyCANARY-query-key-0123456789abcdefg';
    const warnings: string[] = [];
    const config = parseConfig(
      [
        'providers:',
        '  echo: { kind: echo }',
        `  gemini: { kind: openai, base_url: "https://generativelanguage.googleapis.com/v1beta/openai?key=${KEY}" }`,
        `  fn: { kind: openai, base_url: "https://fn.example/api/v1?code=${KEY}&Code=${KEY}&api-version=1" }`,
        '  azure: { kind: openai, base_url: "https://r.openai.azure.com/openai/v1?api-version=preview" }',
        '  empty: { kind: openai, base_url: "https://x.example/v1?token=" }',
        // Azure API Management takes its key in the query too.
        `  apim: { kind: openai, base_url: "https://gw.azure-api.net/openai/v1?subscription-key=${KEY}" }`,
      ].join('\n'),
      'w.yaml',
      {},
      { onWarning: (w) => warnings.push(w) },
    );
    // Still loaded and sent as written (README: the query is kept).
    expect(config.providers.gemini).toMatchObject({ base_url: expect.stringContaining(KEY) });
    const rule = (name: string, param: string) =>
      `providers.${name}.base_url carries a credential in its query (${param}=…): a literal secret in the config file; put the key in providers.${name}.api_key as a secret ref (sent as Authorization: Bearer) if the upstream accepts it so`;
    expect(warnings.filter((w) => w.includes('query'))).toEqual([rule('gemini', 'key'), rule('fn', 'code'), rule('fn', 'Code'), rule('apim', 'subscription-key')]);
    expect(warnings.join('\n')).not.toContain('CANARY');
  });

  it('a redaction profile with no entities (an emptied built-in one included): prompts under it go out unredacted', () => {
    const warnings: string[] = [];
    parseConfig(
      'identity: { methods: [kubernetes], kubernetes: { issuer: "https://k", audiences: [w], jwks_file: j.json } }\npolicy: { paths: [p] }\nredaction: { profiles: { standard: { entities: [] }, open: { entities: [] }, ok: { entities: [EMAIL_ADDRESS] } } }',
      'w.yaml',
      {},
      { onWarning: (w) => warnings.push(w) },
    );
    expect(warnings).toEqual([
      'redaction.profiles.standard.entities is empty: prompts and answers under this profile are not redacted, secrets included',
      'redaction.profiles.open.entities is empty: prompts and answers under this profile are not redacted, secrets included',
    ]);
  });
});

describe('parseListen', () => {
  it('accepts IPv4, bracketed IPv6, names; rejects the rest', () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListen('warden.local:1')).toEqual({ host: 'warden.local', port: 1 });
    expect(parseListen(':80')).toBe('must be host:port, e.g. 127.0.0.1:8700');
    expect(parseListen('[zz]:80')).toBe('bracketed host must be an IPv6 address');
    expect(parseListen('a b:80')).toBe('host must be an IP address or a host name');
    expect(parseListen('h:http')).toBe('port must be a number from 0 to 65535');
  });
});

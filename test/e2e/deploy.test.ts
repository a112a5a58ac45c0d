/**
 * The shipped deployment files stay valid: the Kubernetes example's embedded config passes the
 * config schema, its pod runs Warden non-root on a read-only root filesystem, and the Dockerfile
 * keeps the properties the docs promise.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/index.js';
import { REPO } from './helpers/cli.js';
import OpenAI from 'openai';
import { createSigner, DOWN_URL, startWarden } from './helpers/warden.js';

/** The embedded default (deploy/local/warden.yaml) as a runtime on free loopback ports, not started. */
function embeddedDefault() {
  const config = loadConfig(join(REPO, 'deploy', 'local', 'warden.yaml'), {
    WARDEN_HTTP_LISTEN: '127.0.0.1:0',
    WARDEN_GRPC_LISTEN: '127.0.0.1:0',
    WARDEN_ADMIN_LISTEN: '127.0.0.1:0',
  });
  return createRuntime(config, { logger: createLogger({ level: 'error' }, { write: () => undefined }), configDir: join(REPO, 'deploy', 'local') });
}

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Parsed as Kubernetes parses it: kubectl reads YAML 1.1, where `0440` is octal. (YAML 1.2 would
 * read it as decimal 440, i.e. mode 0670: the file mode a reader sees must be the one applied.)
 */
function manifest(): any[] {
  const text = readFileSync(join(REPO, 'deploy', 'kubernetes', 'sidecar.yaml'), 'utf8');
  return parseAllDocuments(text, { version: '1.1' }).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as any;
  });
}

/**
 * Whether a process can read a file the kubelet projected into a volume. Secret, ConfigMap and
 * projected files are owned by root; with the pod's `fsGroup` they belong to that group, and the
 * container's processes have `fsGroup` as a supplementary group.
 */
function readableBy(mode: number, proc: { uid: number; gids: number[] }, fileGid: number): boolean {
  if (proc.uid === 0) return true;
  if (proc.gids.includes(fileGid) && (mode & 0o040) !== 0) return true;
  return (mode & 0o004) !== 0;
}

describe('deploy/kubernetes/sidecar.yaml', () => {
  const docs = manifest();
  const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'warden-config');
  const embedded: string = cm.data['warden.yaml'];
  const spec = docs.find((d) => d.kind === 'Deployment').spec.template.spec;
  const warden = spec.initContainers.find((c: any) => c.name === 'warden');
  const volume = (name: string) => spec.volumes.find((v: any) => v.name === name);
  const mountOf = (container: any, name: string) => container.volumeMounts.find((m: any) => m.name === name);
  const config = parseConfig(embedded, 'sidecar.yaml#warden.yaml');

  it('embeds a config that passes validation', () => {
    expect(config.identity.methods).toEqual(['kubernetes']);
    expect(config.identity.kubernetes?.audiences).toEqual(['warden']);
    expect(config.audit.required).toBe(true);
  });

  it('runs Warden as a native sidecar, non-root, read-only root filesystem, no capabilities', () => {
    expect(warden.restartPolicy).toBe('Always');
    expect(spec.securityContext.runAsNonRoot).toBe(true);
    expect(warden.securityContext.runAsUser).toBe(1000);
    expect(warden.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(warden.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(warden.securityContext.capabilities.drop).toEqual(['ALL']);
    // The Dockerfile's user: the image and the manifest must agree on who Warden is.
    expect(readFileSync(join(REPO, 'Dockerfile'), 'utf8')).toMatch(/^USER 1000:1000$/m);
  });

  it('lets the Warden user, and only it, read the provider key Secret', () => {
    const secret = volume('warden-secrets').secret;
    const mode: number = secret.defaultMode ?? 0o644;
    const fsGroup: number | undefined = spec.securityContext.fsGroup;
    // Without fsGroup the kubelet leaves the files root:root.
    const fileGid = fsGroup ?? 0;
    const user = warden.securityContext.runAsUser ?? spec.securityContext.runAsUser;
    const group = warden.securityContext.runAsGroup ?? spec.securityContext.runAsGroup;
    const wardenProc = { uid: user, gids: [group, ...(fsGroup === undefined ? [] : [fsGroup])] };
    expect(readableBy(mode, wardenProc, fileGid), `mode ${mode.toString(8)}, fsGroup ${String(fsGroup)}`).toBe(true);
    // Anyone else (another uid, not in the group) cannot.
    expect(readableBy(mode, { uid: 4242, gids: [4242] }, fileGid)).toBe(false);
    // The config names the key by the path the Secret is mounted at.
    const mount = mountOf(warden, 'warden-secrets').mountPath as string;
    expect((config.providers.openai as { api_key?: string }).api_key).toMatch(new RegExp(`^file://${mount}/[^/]+$`));
    // The app container never mounts the keys.
    const app = spec.containers.find((c: any) => c.name === 'app');
    expect(mountOf(app, 'warden-secrets')).toBeUndefined();
  });

  it('probes the admin port, which listens beyond loopback, on the paths it serves', () => {
    const port = warden.ports.find((p: any) => p.name === 'admin').containerPort;
    expect(config.listen.admin).toEqual({ host: '0.0.0.0', port });
    expect(warden.startupProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(warden.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(warden.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    // The app and Prometheus annotations agree with the config.
    const annotations = docs.find((d) => d.kind === 'Deployment').spec.template.metadata.annotations;
    expect(annotations['prometheus.io/port']).toBe(String(port));
  });

  it('gives the app a token for the audience and key set the config checks', () => {
    const token = volume('warden-token').projected.sources[0].serviceAccountToken;
    expect(config.identity.kubernetes?.audiences).toContain(token.audience);
    const app = spec.containers.find((c: any) => c.name === 'app');
    const tokenFile = `${mountOf(app, 'warden-token').mountPath}/${token.path}`;
    expect(app.env.find((e: any) => e.name === 'WARDEN_TOKEN_FILE')?.value).toBe(tokenFile);
    const http = config.listen.http as unknown as { host: string; port: number };
    expect(app.env.find((e: any) => e.name === 'OPENAI_BASE_URL')?.value).toBe(`http://${http.host}:${http.port}/v1`);
    const jwksMount = mountOf(warden, 'warden-jwks').mountPath as string;
    expect(config.identity.kubernetes?.jwks_file?.startsWith(`${jwksMount}/`)).toBe(true);
    // Every mount of the config's paths exists, read-only.
    const mounts = new Map<string, any>(warden.volumeMounts.map((m: any) => [m.mountPath, m]));
    for (const p of [...config.policy.paths, ...config.templates.paths]) expect(mounts.get(p)?.readOnly, p).toBe(true);
    expect(warden.args).toEqual(['serve', '--config', `${mountOf(warden, 'warden-config').mountPath}/warden.yaml`]);
  });

  describe('the embedded config, with /etc/warden moved to a temp dir, serves its probes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-k8s-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('loads with Warden own loader and answers /healthz and /readyz on the admin port', async () => {
      const signer = await createSigner();
      mkdirSync(join(dir, 'jwks'));
      mkdirSync(join(dir, 'secrets'));
      writeFileSync(join(dir, 'jwks', 'jwks.json'), JSON.stringify(signer.jwks));
      writeFileSync(join(dir, 'secrets', 'openai-api-key'), 'sk-test-not-a-key\n');
      cpSync(join(REPO, 'policies'), join(dir, 'policies'), { recursive: true });
      cpSync(join(REPO, 'deploy', 'local', 'templates'), join(dir, 'templates'), { recursive: true });
      // Cluster-only: the mount root, and fixed ports (port 0 here, so tests never collide).
      // The shipped local templates read file:secrets/escalation-code beside the config: a root
      // the sidecar's own templates would not need (its config lets templates read no file).
      const text = `${embedded.replaceAll('/etc/warden', dir).replace(/(http|grpc|admin): [0-9.]+:\d+/g, '$1: 127.0.0.1:0')}\nsecrets: { file_roots: [secrets] }\n`;
      const file = join(dir, 'warden.yaml');
      writeFileSync(file, text);
      const loaded = loadConfig(file, {});
      const runtime = await createRuntime(loaded, { logger: createLogger({ level: 'error' }, { write: () => undefined }), configDir: dir });
      try {
        const addresses = await runtime.start();
        for (const probe of [warden.startupProbe, warden.readinessProbe, warden.livenessProbe]) {
          const res = await fetch(`${addresses.admin}${probe.httpGet.path as string}`);
          expect(res.status, probe.httpGet.path).toBe(200);
        }
      } finally {
        await runtime.shutdown('test finished');
      }
    });
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  it('builds on node:24, runs on node:24-slim as a non-root user', () => {
    expect(text).toMatch(/^FROM node:24[^\s]* AS build$/m);
    expect(text).toMatch(/^FROM node:24[^\s]*-slim AS runtime$/m);
    expect(text).toMatch(/^USER 1000:1000$/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "dist\/src\/main\.js"\]$/m);
  });

  it("sets no WARDEN_* override in the image: a mounted config's listen and log keys must not be overridden by it", () => {
    // Docker drops comment lines inside an instruction, then joins its continued lines.
    const runtime = text.slice(text.indexOf(' AS runtime'));
    const instructions = runtime
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n')
      .replace(/\\\n/g, ' ')
      .split('\n');
    const env: Record<string, string> = {};
    for (const line of instructions.filter((l) => /^ENV\s/.test(l))) {
      for (const [, name, value] of line.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)) env[name!] = value!;
    }
    expect(env.NODE_ENV).toBe('production'); // the ENV block is read
    // A config an operator mounts (README "Docker": `serve --config /etc/warden/warden.yaml`).
    const mounted = 'listen: { http: 127.0.0.1:9100, grpc: 127.0.0.1:9101, admin: 0.0.0.0:9102 }\nlog: { level: warn }\n';
    const inImage = parseConfig(mounted, '/etc/warden/warden.yaml', env);
    expect(inImage.log.level).toBe('warn');
    expect(inImage.listen).toEqual(parseConfig(mounted, '/etc/warden/warden.yaml', {}).listen);
  });

  it('HEALTHCHECK asks the admin listener WARDEN_ADMIN_LISTEN names: healthy when Warden answers there, unhealthy when nothing does', async () => {
    const cmd = /^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$/m.exec(text)?.[1];
    expect(cmd).toBeDefined();
    const argv = JSON.parse(cmd!) as string[];
    expect(argv.slice(0, 2)).toEqual(['node', '-e']);
    const runtime = await embeddedDefault();
    try {
      const admin = new URL((await runtime.start()).admin).host;
      const check = (listen: string) =>
        new Promise<number | null>((resolve) => {
          execFile(process.execPath, argv.slice(1), { env: { ...process.env, WARDEN_ADMIN_LISTEN: listen } }, (err) => resolve(err ? ((err as { code?: number }).code ?? null) : 0));
        });
      expect(await check(admin)).toBe(0);
      const closed = await closedPort();
      expect(await check(`127.0.0.1:${closed}`)).toBe(1);
    } finally {
      await runtime.shutdown('test finished');
    }
  });

  it('the shipped code needs only `dependencies`: what `npm prune --omit=dev` leaves runs `warden serve`', () => {
    // The runtime stage has the production dependency set only. A value import of a dev
    // dependency (openai, tsx, vitest...) in src/ typechecks, passes every test (they run with
    // the full node_modules) and then fails the image's start with ERR_MODULE_NOT_FOUND.
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const shipped = new Set(Object.keys(pkg.dependencies));
    const files = (readdirSync(join(REPO, 'src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(50);
    const needed = new Map<string, string>();
    for (const file of files) {
      const code = readFileSync(join(REPO, 'src', file), 'utf8');
      // Static imports and re-exports (over several lines too; `import type` is erased), bare
      // side-effect imports, and dynamic import().
      const specifiers = [
        ...[...code.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^;'"]*?\sfrom\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!),
        ...[...code.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!),
        ...[...code.matchAll(/(?<![\w.])import\(\s*['"]([^'"]+)['"]\s*\)(?!\.)/g)].map((m) => m[1]!),
      ];
      for (const spec of specifiers) {
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        needed.set(name, file);
      }
    }
    expect(needed.size).toBeGreaterThan(5); // the scan finds the imports
    for (const [name, file] of needed) expect(shipped.has(name), `src/${file} imports ${name}, which is not in dependencies`).toBe(true);
  });

  it("prunes re2's build leftovers in the build stage, and re2 still loads and matches after it", () => {
    const build = text.slice(text.indexOf(' AS build'), text.indexOf(' AS runtime'));
    expect(build).toMatch(/npm prune --omit=dev[^\n]*\\\n\s*&& sh scripts\/prune-native-build\.sh$/m);
    // The script run on a copy of the installed re2, as the build stage runs it on its own.
    const dir = mkdtempSync(join(tmpdir(), 'warden-prune-'));
    try {
      cpSync(join(REPO, 'node_modules', 're2'), join(dir, 'node_modules', 're2'), { recursive: true });
      execFileSync('sh', [join(REPO, 'scripts', 'prune-native-build.sh')], { cwd: dir });
      const left = readdirSync(join(dir, 'node_modules', 're2', 'build', 'Release'));
      expect(left).toEqual(['re2.node']);
      expect(existsSync(join(dir, 'node_modules', 're2', 'vendor'))).toBe(false);
      const out = execFileSync(process.execPath, ['-e', "const RE2 = require('re2'); process.stdout.write(String(new RE2('a+b').test('xaaab')))"], { cwd: dir, encoding: 'utf8' });
      expect(out).toBe('true');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('README examples against the embedded default', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const embedded = loadConfig(join(REPO, 'deploy', 'local', 'warden.yaml'), {});

  it('runs the image so that the dev-only default can be called from the host', () => {
    // The image's command serves the embedded default, which trusts only loopback dev callers.
    expect(readFileSync(join(REPO, 'Dockerfile'), 'utf8')).toMatch(/^CMD \["serve", "--config", "deploy\/local\/warden\.yaml"\]$/m);
    expect(embedded.identity.methods).toEqual(['dev']);
    const run = /^docker run .*$/m.exec(readme)?.[0] ?? '';
    // A published port delivers connections from the Docker bridge, which dev refuses (401).
    expect(run).not.toMatch(/\s-p\s/);
    expect(run).toContain('--network host');
  });

  it("shows the retired template's answer as Warden gives it", async () => {
    const shown = /^# (\{"error":.*"code":"template_retired".*\})$/m.exec(readme)?.[1];
    const runtime = await embeddedDefault();
    try {
      const { http } = await runtime.start();
      const res = await fetch(`${http}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'echo', warden: { template: 'support/ticket-summary@1', variables: {} } }),
      });
      expect(res.status).toBe(410);
      expect(JSON.parse(shown ?? 'null')).toEqual(await res.json());
    } finally {
      await runtime.shutdown('test finished');
    }
  });
});

describe('deploy/local', () => {
  it("the example templates' comments point at files that exist", () => {
    const dir = join(REPO, 'deploy', 'local', 'templates');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const comments = readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.trimStart().startsWith('#'));
      // Repository paths named in a comment: deploy/..., policies/..., src/...
      for (const path of comments.join('\n').match(/\b(?:deploy|policies|src)\/[\w./-]*\w/g) ?? []) {
        expect(existsSync(join(REPO, path)), `${f} names ${path}`).toBe(true);
      }
    }
  });
});

describe("the Kubernetes example app's client", () => {
  it('reads the projected token file for every request (apiKey as a function), so a rotated token is used at once', async () => {
    const w = await startWarden({ upstreamUrl: DOWN_URL });
    try {
      const tokenFile = join(w.dir, 'token');
      writeFileSync(tokenFile, `${await w.signer.token('support', 'ticket-bot')}\n`);
      // As README's Kubernetes section shows it: the SDK itself reads no WARDEN_TOKEN_FILE.
      const client = new OpenAI({
        baseURL: `${w.addresses.http}/v1`,
        apiKey: async () => readFileSync(tokenFile, 'utf8').trim(),
        maxRetries: 0,
      });
      const ask = () =>
        client.chat.completions.create({
          model: 'echo',
          messages: [],
          // @ts-expect-error Warden's extension of the request body
          warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hi' } },
        });
      expect((await ask()).choices[0]?.message.content).toContain('Ticket T-1');
      // The kubelet rotates the file; the next request carries the new token (here one for a
      // service account the policy refuses, so the change is visible).
      writeFileSync(tokenFile, `${await w.signer.token('marketing', 'campaign-bot')}\n`);
      const refused = await ask().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.PermissionDeniedError);
      expect(w.audit().at(-1)).toMatchObject({ error_code: 'policy_denied' });
    } finally {
      await w.close();
    }
  });
});

describe('deploy/prometheus/warden-rules.yaml', () => {
  const dir = join(REPO, 'deploy', 'prometheus');
  const promtool = (...args: string[]) => {
    try {
      return { code: 0, output: execFileSync('promtool', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      return { code: e.status, output: `${e.stdout}${e.stderr}` };
    }
  };

  it('passes promtool check rules, and its unit tests: each alert fires on series shaped as Warden exposes them', () => {
    const check = promtool('check', 'rules', 'warden-rules.yaml');
    expect(check.output).toContain('SUCCESS: 7 rules found');
    expect(check.code).toBe(0);
    const tests = promtool('test', 'rules', 'warden-rules.test.yaml');
    expect(tests.output).toContain('SUCCESS');
    expect(tests.code).toBe(0);
  });

  it('names only metrics and labels Warden exposes (a renamed metric would silence an alert)', () => {
    const registry = createMetrics({ collectDefault: false }).registry;
    const labelsOf = (name: string): string[] | undefined => {
      const metric = registry.getSingleMetric(name) as unknown as { labelNames?: readonly string[] } | undefined;
      return metric ? ['environment', ...(metric.labelNames ?? [])] : undefined;
    };
    const rules = parseAllDocuments(readFileSync(join(dir, 'warden-rules.yaml'), 'utf8'))[0]!.toJS() as { groups: Array<{ rules: Array<{ expr: string }> }> };
    const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    const named = new Set(exprs.flatMap((e) => [...e.matchAll(/\bwarden_[a-z_]+/g)].map((m) => m[0].replace(/_bucket$/, ''))));
    expect(named.size).toBeGreaterThanOrEqual(8);
    for (const name of named) expect(labelsOf(name), name).toBeDefined();
    // The unit tests' series carry only labels the metric has (and `le` for a histogram bucket).
    const tests = parseAllDocuments(readFileSync(join(dir, 'warden-rules.test.yaml'), 'utf8'))[0]!.toJS() as { tests: Array<{ input_series: Array<{ series: string }> }> };
    for (const { series } of tests.tests.flatMap((t) => t.input_series)) {
      const [, name, labels] = /^([a-z_]+)\{(.*)\}$/.exec(series)!;
      const metric = name!.replace(/_bucket$/, '');
      const known = labelsOf(metric);
      expect(known, series).toBeDefined();
      for (const [, label] of labels!.matchAll(/([a-z_]+)="/g)) expect([...known!, ...(name !== metric ? ['le'] : [])], series).toContain(label);
    }
  });
});

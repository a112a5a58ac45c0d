/**
 * Reads, validates and normalises a config file. Order: YAML syntax → environment overrides →
 * schema (defaults, strict keys, cross-checks) → relative paths resolved against the file's
 * directory. Every problem found is collected into one ConfigError.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { isAlias, LineCounter, parseAllDocuments, parseDocument, visit, type Document } from 'yaml';
import { MAX_YAML_DEPTH, yamlDepthProblem } from '../pipeline/yaml-depth.js';
import { unresolvedAlias } from '../pipeline/yaml-aliases.js';
import { YAML_TAG_OPTIONS, yamlErrorLine, yamlTagProblems } from '../pipeline/yaml-tags.js';
import { yamlControlProblems } from '../pipeline/yaml-controls.js';
import { yamlKeyProblems } from '../pipeline/yaml-keys.js';
import { FileTooLargeError, readFailure, readRegularFileSync } from '../pipeline/regular-file.js';
import { TextDecodeError } from '../pipeline/text-file.js';
import { addDuplicateKeyErrors, NO_LIBRARY_UNIQUE_KEYS } from '../pipeline/yaml-unique-keys.js';
import type { z } from 'zod';
import { parseSecretRef } from '../secrets/index.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { describeIssue } from './issue-messages.js';
import { configKeyNameProblems } from './key-names.js';
import { parseListen } from './listen.js';
import { duplicateKeyAt, formatKeyPath, locate, type KeyPath } from './locate.js';
import { ConfigSchema, type Config } from './schema.js';
import { configRefTargets } from './secret-refs.js';
import { configWarnings } from './warnings.js';
import { envNameAllowed } from '../pipeline/secret-access.js';
import { MIB } from '../pipeline/sizes.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadOptions {
  /** Called once per warning (non-loopback listener, dev identity, ...). */
  onWarning?: (message: string) => void;
}

const LISTEN_OVERRIDES = [
  ['WARDEN_HTTP_LISTEN', 'http'],
  ['WARDEN_GRPC_LISTEN', 'grpc'],
  ['WARDEN_ADMIN_LISTEN', 'admin'],
] as const;

const RELATIVE_FILE_REF = /^file:(?!\/\/)/i;

/**
 * Most alias expansions the file may make (the yaml library's `maxAliasCount`, which weighs each
 * use of an anchor by the aliases nested in it): room for DRY YAML, none for an alias bomb.
 */
const MAX_ALIAS_COUNT = 1000;

/** Offset of the document's first alias (`*name`), where an alias-count problem starts. */
function firstAliasOffset(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_key, node) {
      if (isAlias(node) && node.range) offset = node.range[0];
      return visit.BREAK;
    },
  });
  return offset;
}

/**
 * The largest config file read (1 MiB: the embedded default is 1 KiB, a large production file some
 * tens). The file is read and parsed whole, at about 40 times its size in memory: a file of tens
 * of MB (a log written over it, a wrong path) would take seconds and gigabytes, or end the process.
 */
export const MAX_CONFIG_BYTES = MIB;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The configuration with every default applied, as if loaded from an empty file. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}

/** The directory of the file each parsed config came from (see configDirOf). */
const configDirs = new WeakMap<Config, string>();

/**
 * The directory of the file `config` was parsed from: what its relative paths and its templates'
 * relative secret refs mean "next to". Undefined for a config built another way.
 */
export function configDirOf(config: Config): string | undefined {
  return configDirs.get(config);
}

/** Reads and validates a config file. Throws ConfigError (code `config_invalid`). */
export function loadConfig(file: string, env: Env = process.env, opts: LoadOptions = {}): Config {
  let text: string;
  try {
    // A regular file only: `--config` naming a FIFO would wait for a writer for good.
    text = readRegularFileSync(file, MAX_CONFIG_BYTES);
  } catch (err) {
    if (err instanceof FileTooLargeError) {
      throw withEnvProblems([{ file, path: '(root)', message: `the file is ${err.size} bytes; a config file may be at most ${MAX_CONFIG_BYTES / MIB} MiB (${MAX_CONFIG_BYTES} bytes)` }], env);
    }
    if (err instanceof TextDecodeError) throw withEnvProblems([{ file, line: err.line, column: err.column, path: '(root)', message: err.reason }], env);
    throw withEnvProblems([{ file, path: '(root)', message: `cannot read the file (${readFailure(err)})` }], env);
  }
  return parseConfig(text, file, env, opts);
}

/**
 * A file that cannot be read, parsed or used as a mapping stops the load before the overrides are
 * applied; a bad override is still one of its problems (every problem at once, README "Errors"),
 * not one found only once the file is fixed.
 */
function withEnvProblems(problems: ConfigProblem[], env: Env): ConfigError {
  const fromEnv: ConfigProblem[] = [];
  if (!problems.some((p) => p.file.startsWith('environment variable '))) applyEnvOverrides({}, env, fromEnv);
  return new ConfigError([...problems, ...fromEnv]);
}

/**
 * Validates config text. `file` names the source in errors and anchors relative paths.
 * Environment overrides apply only when `env` is given.
 */
/**
 * The problem with a file of several YAML documents, in the user's words (the library's message
 * is addressed to its caller). The position is the library's: the second document's start.
 */
function multipleDocuments(text: string): string {
  const docs = parseAllDocuments(text, { ...YAML_TAG_OPTIONS, ...NO_LIBRARY_UNIQUE_KEYS });
  const count = Array.isArray(docs) ? docs.length : 1;
  return `the config file must hold one YAML document; found ${count} (a "---" line starts another)`;
}

export function parseConfig(text: string, file: string, env: Env = {}, opts: LoadOptions = {}): Config {
  try {
    return parseConfigText(text, file, env, opts);
  } catch (err) {
    throw err instanceof ConfigError ? withEnvProblems([...err.problems], env) : err;
  }
}

function parseConfigText(text: string, file: string, env: Env, opts: LoadOptions): Config {
  // The YAML parser cannot survive a few thousand levels (see pipeline/yaml-depth.ts).
  const deep = yamlDepthProblem(text);
  if (deep) throw new ConfigError([{ file, line: deep.line, column: deep.column, path: formatKeyPath(deep.path), message: `nested deeper than ${MAX_YAML_DEPTH} levels` }]);
  const counter = new LineCounter();
  const doc = parseDocument(text, { ...YAML_TAG_OPTIONS, lineCounter: counter, prettyErrors: false, ...NO_LIBRARY_UNIQUE_KEYS });
  addDuplicateKeyErrors(doc);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        // A repeated key is named by its path, with the line of the one it repeats.
        const dup = e.code === 'DUPLICATE_KEY' ? duplicateKeyAt(doc, e.pos[0]) : undefined;
        if (dup) {
          const first = counter.linePos(dup.firstOffset);
          return { file, line: pos.line, column: pos.col, path: formatKeyPath(dup.path), message: `duplicate key: already set at line ${first.line}, column ${first.col} (keys must be unique)` };
        }
        const message = e.code === 'MULTIPLE_DOCS' ? multipleDocuments(text) : `YAML syntax: ${yamlErrorLine(e)}`;
        return { file, line: pos.line, column: pos.col, path: '(root)', message };
      }),
    );
  }
  // A tag Warden does not implement (`!vault`, `!include`) would otherwise be dropped silently.
  const tagProblems = yamlTagProblems(doc);
  if (tagProblems.length > 0) {
    throw new ConfigError(
      tagProblems.map((p) => {
        const pos = counter.linePos(p.offset);
        return { file, line: pos.line, column: pos.col, path: '(root)', message: p.message };
      }),
    );
  }

  // `"\0"` and the like: a control character no config value means (see pipeline/yaml-controls.ts).
  // ... and a key that is a list or a mapping (see pipeline/yaml-keys.ts).
  // ... and a key that would name another thing than written (see config/key-names.ts).
  const keyAndValueProblems = [...yamlControlProblems(doc), ...yamlKeyProblems(doc), ...configKeyNameProblems(doc, text, counter)].sort((a, b) => a.offset - b.offset);
  if (keyAndValueProblems.length > 0) {
    throw new ConfigError(
      keyAndValueProblems.map((p) => {
        const pos = counter.linePos(p.offset);
        return { file, line: pos.line, column: pos.col, path: formatKeyPath(p.path), message: p.message };
      }),
    );
  }

  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml library throws (a ReferenceError, with no position) when aliases expand too much,
    // and when an alias has no anchor.
    if (!(err instanceof ReferenceError)) throw err;
    const missing = unresolvedAlias(doc);
    if (missing) {
      const at = counter.linePos(missing.offset);
      throw new ConfigError([{ file, line: at.line, column: at.col, path: '(root)', message: `YAML: ${missing.message}` }]);
    }
    const pos = counter.linePos(firstAliasOffset(doc));
    throw new ConfigError([
      {
        file,
        line: pos.line,
        column: pos.col,
        path: '(root)',
        message: `YAML: aliases expand too much (more than ${MAX_ALIAS_COUNT} alias expansions); write the repeated values out, or use fewer nested anchors`,
      },
    ]);
  }
  const raw: unknown = js === null || js === undefined ? {} : js;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '(root)', message: 'must be a mapping of keys to values' }]);
  }

  const problems: ConfigProblem[] = [];
  const fromEnv = applyEnvOverrides(raw as Record<string, unknown>, env, problems);
  for (const path of protoKeyPaths(raw, [])) {
    const pos = locate(doc, counter, path);
    problems.push({ file, line: pos?.line, column: pos?.column, path: formatKeyPath(path), message: '"__proto__" cannot be used as a key' });
  }

  const result = ConfigSchema.safeParse(raw, { error: describeIssue });
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          if (key === '__proto__') continue; // reported above, wherever it is
          const path = [...issue.path, key];
          const pos = locate(doc, counter, path);
          problems.push({ file, line: pos?.line, column: pos?.column, path: formatKeyPath(path), message: unknownKeyMessage(key, issue) });
        }
        continue;
      }
      const overridden = envProblem(issue, fromEnv);
      if (overridden) {
        problems.push(overridden);
        continue;
      }
      const pos = locate(doc, counter, issue.path);
      problems.push({ file, line: pos?.line, column: pos?.column, path: formatKeyPath(issue.path), message: issue.message });
    }
  }
  if (problems.length > 0) {
    problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
    throw new ConfigError(problems);
  }

  const dir = dirname(resolve(file));
  const config = resolvePaths(result.data as Config, dir);
  // Written differently (`h.sock`, `./h.sock`, one absolute), one path all the same: the gRPC
  // listener would find the HTTP one's socket there at start.
  // Through a symbolic link to a directory too (`a/h.sock`, `b/h.sock` with `b -> a`): the
  // listener would then find its own HTTP socket live there and blame "another process".
  const { http_socket: httpSocket, grpc_socket: grpcSocket } = config.listen;
  if (httpSocket !== undefined && grpcSocket !== undefined && (httpSocket === grpcSocket || realSocketPath(httpSocket) === realSocketPath(grpcSocket))) {
    const pos = locate(doc, counter, ['listen', 'grpc_socket']);
    const shown = httpSocket === grpcSocket ? grpcSocket : `${realSocketPath(grpcSocket)}, through a symbolic link`;
    throw new ConfigError([{ file, line: pos?.line, column: pos?.column, path: 'listen.grpc_socket', message: `uses the same path as listen.http_socket (${shown})` }]);
  }
  configDirs.set(config, dir);
  if (opts.onWarning) for (const w of [...configWarnings(config), ...unknownEnvWarnings(env, config)]) opts.onWarning(w);
  return config;
}

/** A socket path with its directory's symbolic links resolved (the path as written when the directory does not exist yet). */
function realSocketPath(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

/**
 * The paths of every `__proto__` key in the parsed YAML (an own property there). A mapping of
 * names (models, providers, labels) would drop it without a word, and its value unchecked.
 */
function protoKeyPaths(node: unknown, at: KeyPath): KeyPath[] {
  if (node === null || typeof node !== 'object') return [];
  const found: KeyPath[] = [];
  if (Array.isArray(node)) {
    node.forEach((item, i) => found.push(...protoKeyPaths(item, [...at, i])));
    return found;
  }
  for (const key of Object.keys(node)) {
    const path = [...at, key];
    if (key === '__proto__') found.push(path);
    else found.push(...protoKeyPaths((node as Record<string, unknown>)[key], path));
  }
  return found;
}

/**
 * The problem as the environment's, when the value at fault came from a variable (`fromEnv`: key
 * path → variable): a file position would point at a line that does not hold it, or at none. A
 * problem between two keys (a listen collision, whose issue carries the other key and the message
 * from its view) goes to the variable of whichever side was overridden.
 */
function envProblem(issue: z.core.$ZodIssue, fromEnv: ReadonlyMap<string, string>): ConfigProblem | undefined {
  const path = formatKeyPath(issue.path);
  const own = fromEnv.get(path);
  if (own) return { file: `environment variable ${own}`, path, message: issue.message };
  const params = issue.code === 'custom' ? (issue.params as { other?: unknown; otherMessage?: unknown } | undefined) : undefined;
  if (typeof params?.other !== 'string' || typeof params.otherMessage !== 'string') return undefined;
  const other = fromEnv.get(params.other);
  return other ? { file: `environment variable ${other}`, path: params.other, message: params.otherMessage } : undefined;
}

/** The override variables, in the order README lists them. */
const OVERRIDE_NAMES: readonly string[] = [...LISTEN_OVERRIDES.map(([name]) => name), 'WARDEN_LOG_LEVEL'];

/** WARDEN_* variables README documents for the calling application (the token it sends), not for Warden. */
const CLIENT_VARIABLES: ReadonlySet<string> = new Set(['WARDEN_TOKEN', 'WARDEN_TOKEN_FILE']);

/**
 * A WARDEN_* variable Warden does not read (`WARDEN_HTTP_PORT`, `WARDEN_LOGLEVEL`) is a warning,
 * with the override meant when one is close: it would otherwise be ignored without a word, as an
 * unknown key never is. Not an error: the environment is shared with other programs. Variables
 * the config reads as secrets are not unknown: an `env:` ref of its own (a provider's api_key),
 * or a name `secrets.env_allow` lets templates read (README suggests `WARDEN_TPL_*`).
 */
function unknownEnvWarnings(env: Env, config: Config): string[] {
  const out: string[] = [];
  const secretNames = configRefTargets(config, '/').names;
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('WARDEN_') || env[name] === undefined || OVERRIDE_NAMES.includes(name) || CLIENT_VARIABLES.has(name)) continue;
    if (secretNames.has(name) || envNameAllowed(name, config.secrets.env_allow)) continue;
    // Same listener or log (WARDEN_HTTP_PORT → WARDEN_HTTP_LISTEN), else the nearest spelling.
    const part = name.split('_')[1];
    const meant = OVERRIDE_NAMES.find((n) => n.split('_')[1] === part) ?? closest(name, [...OVERRIDE_NAMES]);
    out.push(
      `environment variable ${name} is not one Warden reads${meant ? ` (did you mean ${meant}?)` : ''}; the overrides are ${OVERRIDE_NAMES.join(', ')}`,
    );
  }
  return out;
}

/** Applies the WARDEN_* overrides to `raw`; returns the key paths they set, with their variables. */
function applyEnvOverrides(raw: Record<string, unknown>, env: Env, problems: ConfigProblem[]): Map<string, string> {
  const set = new Map<string, string>();
  const section = (key: string): Record<string, unknown> => {
    const current = raw[key];
    if (current !== undefined && (typeof current !== 'object' || current === null || Array.isArray(current))) {
      return {}; // the schema reports the bad section; the override has nowhere to go
    }
    if (current === undefined) raw[key] = {};
    return raw[key] as Record<string, unknown>;
  };
  // A variable that is set but empty (`WARDEN_HTTP_LISTEN=$PORT` with PORT unset, `-e
  // WARDEN_LOG_LEVEL=`) is a slip, refused by name as `--config=` is: read as unset, Warden would
  // run with the file's value while the operator believes the override applies.
  const empty = (name: string, path: string): boolean => {
    if (env[name] !== '') return false;
    problems.push({ file: `environment variable ${name}`, path, message: 'is set but empty: give it a value, or unset it to use the file' });
    return true;
  };
  for (const [name, key] of LISTEN_OVERRIDES) {
    const value = env[name];
    if (value === undefined || empty(name, `listen.${key}`)) continue;
    const parsed = parseListen(value);
    if (typeof parsed === 'string') {
      problems.push({ file: `environment variable ${name}`, path: `listen.${key}`, message: parsed });
      continue;
    }
    section('listen')[key] = value;
    set.set(`listen.${key}`, name);
  }
  const level = env.WARDEN_LOG_LEVEL;
  if (level !== undefined && !empty('WARDEN_LOG_LEVEL', 'log.level')) {
    if (!LOG_LEVELS.includes(level)) {
      problems.push({
        file: 'environment variable WARDEN_LOG_LEVEL',
        path: 'log.level',
        message: `must be one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`,
      });
    } else {
      section('log').level = level;
      set.set('log.level', 'WARDEN_LOG_LEVEL');
    }
  }
  return set;
}

function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  // `file:relative/path` refs mean "next to this config file", wherever Warden was started from.
  const absRef = (ref: string | undefined) =>
    ref !== undefined && RELATIVE_FILE_REF.test(ref) ? parseSecretRef(ref, { baseDir: base }).url.href : ref;
  const providers: Config['providers'] = {};
  for (const [name, p] of Object.entries(config.providers)) {
    providers[name] = p.kind === 'openai' && p.api_key !== undefined ? { ...p, api_key: absRef(p.api_key) } : p;
  }
  const absOpt = (p: string | undefined) => (p === undefined ? undefined : abs(p));
  const jwks = <T extends { jwks_file?: string; jwks_ca_file?: string; jwks_bearer_token_file?: string }>(v: T | undefined): T | undefined =>
    v && {
      ...v,
      jwks_file: absOpt(v.jwks_file),
      jwks_ca_file: absOpt(v.jwks_ca_file),
      jwks_bearer_token_file: absOpt(v.jwks_bearer_token_file),
    };
  return {
    ...config,
    listen: {
      ...config.listen,
      http_socket: absOpt(config.listen.http_socket),
      grpc_socket: absOpt(config.listen.grpc_socket),
    },
    identity: {
      ...config.identity,
      kubernetes: jwks(config.identity.kubernetes),
      spiffe: config.identity.spiffe && {
        ...jwks(config.identity.spiffe)!,
        ...(config.identity.spiffe.bundles && {
          bundles: Object.fromEntries(Object.entries(config.identity.spiffe.bundles).map(([domain, b]) => [domain, jwks(b)!])),
        }),
      },
    },
    policy: { ...config.policy, paths: config.policy.paths.map(abs) },
    templates: { ...config.templates, paths: config.templates.paths.map(abs) },
    // Normalized (`..`, a trailing `/`), as the paths they are compared with are.
    secrets: {
      ...config.secrets,
      file_roots: config.secrets.file_roots.map((p) => resolve(base, p)),
      vault: config.secrets.vault && {
        ...config.secrets.vault,
        ca_file: absOpt(config.secrets.vault.ca_file),
        auth: {
          ...config.secrets.vault.auth,
          token_file: absOpt(config.secrets.vault.auth.token_file),
          kubernetes: config.secrets.vault.auth.kubernetes && { ...config.secrets.vault.auth.kubernetes, token_file: abs(config.secrets.vault.auth.kubernetes.token_file) },
        },
      },
      ...(config.secrets.kubernetes && {
        kubernetes: { ...config.secrets.kubernetes, token_file: abs(config.secrets.kubernetes.token_file), ca_file: abs(config.secrets.kubernetes.ca_file) },
      }),
    },
    providers,
    redaction: config.redaction.hmac_key === undefined ? config.redaction : { ...config.redaction, hmac_key: absRef(config.redaction.hmac_key) },
    audit: {
      ...config.audit,
      sinks: config.audit.sinks.map((s) => (s === 'stdout' ? s : { file: abs(s.file) })),
      ...(config.audit.hmac_key === undefined ? {} : { hmac_key: absRef(config.audit.hmac_key) }),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Messages. They say what is expected and what kind of thing was found, never the value itself
// (zod's issues: issue-messages.ts).
// ---------------------------------------------------------------------------------------------

function unknownKeyMessage(key: string, issue: { path: KeyPath }): string {
  // YAML 1.1's merge key, which YAML 1.2 (what Warden reads) does not have: say so, not just "unknown".
  if (key === '<<') return 'unknown key: YAML merge keys ("<<: *anchor") are YAML 1.1, not read here; write the keys out (an alias of a whole value, "key: *anchor", works)';
  const known = knownKeysAt(issue.path);
  const suggestion = closest(key, known);
  return suggestion ? `unknown key (did you mean "${suggestion}"?)` : 'unknown key';
}

/**
 * The schemas a value at some path may have, with wrappers (optional, default, a transform's input)
 * taken off and unions spread out. zod's `_zod.def` is its documented introspection surface.
 */
function schemaForms(schema: z.core.$ZodType): z.core.$ZodType[] {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return schemaForms(def.innerType as z.core.$ZodType);
    case 'pipe':
      return schemaForms(def.in as z.core.$ZodType);
    case 'union':
      return (def.options as z.core.$ZodType[]).flatMap(schemaForms);
    default:
      return [schema];
  }
}

/** The schemas one path segment down from `schema`: a key of an object, any key of a record, any item of a list. */
function schemaChild(schema: z.core.$ZodType, segment: PropertyKey): z.core.$ZodType[] {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
  if (def.type === 'object') {
    const shape = def.shape as Record<string, z.core.$ZodType>;
    return Object.hasOwn(shape, String(segment)) ? schemaForms(shape[String(segment)]!) : [];
  }
  if (def.type === 'record') return schemaForms(def.valueType as z.core.$ZodType);
  if (def.type === 'array') return schemaForms(def.element as z.core.$ZodType);
  return [];
}

/**
 * The keys the schema accepts at a path, for "did you mean" hints: read from the schema itself,
 * so optional sections (a provider's `timeouts`, redaction profiles, SPIFFE bundles) have them
 * too and a new key needs no second list.
 */
function knownKeysAt(path: KeyPath): string[] {
  let forms = schemaForms(ConfigSchema);
  for (const segment of path) forms = forms.flatMap((f) => schemaChild(f, segment));
  const keys = new Set<string>();
  for (const f of forms) {
    const def = f._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
    if (def.type === 'object') for (const k of Object.keys(def.shape as object)) keys.add(k);
  }
  return [...keys];
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

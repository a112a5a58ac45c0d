/**
 * The secret refs the config itself names (providers' `api_key`, `redaction.hmac_key`,
 * `audit.hmac_key`): the operator's. They are read wherever they point (secrets.file_roots and
 * env_allow bound the templates' refs only), and no template may name them, whatever the bounds:
 * a root or an allow-list broad enough to hold them (`env_allow: ["*"]`) must not hand Warden's
 * own keys to a template.
 */
import { fileURLToPath } from 'node:url';
import { parseSecretRef } from '../secrets/index.js';
import type { Config } from './schema.js';

export function configSecretRefs(config: Config): string[] {
  const refs: string[] = [];
  for (const p of Object.values(config.providers)) if (p.kind === 'openai' && p.api_key !== undefined) refs.push(p.api_key);
  if (config.redaction.hmac_key !== undefined) refs.push(config.redaction.hmac_key);
  if (config.audit.hmac_key !== undefined) refs.push(config.audit.hmac_key);
  return refs;
}

/** What the config's own refs read: file paths (absolute, relative ones against `configDir`) and variable names. */
export interface ConfigRefTargets {
  readonly paths: ReadonlySet<string>;
  readonly names: ReadonlySet<string>;
}

export function configRefTargets(config: Config, configDir: string): ConfigRefTargets {
  const paths = new Set<string>();
  const names = new Set<string>();
  for (const ref of configSecretRefs(config)) {
    let p;
    try {
      p = parseSecretRef(ref, { baseDir: configDir });
    } catch {
      continue; // the schema has refused it already
    }
    if (p.scheme === 'file') paths.add(fileURLToPath(p.url));
    else if (p.scheme === 'env') names.add(p.url.host);
  }
  return { paths, names };
}

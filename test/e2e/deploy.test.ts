/**
 * The shipped deployment files stay valid: the Kubernetes example's embedded config passes the
 * config schema, its pod runs Warden non-root on a read-only root filesystem, and the Dockerfile
 * keeps the properties the docs promise.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { REPO } from './helpers/cli.js';

describe('deploy/kubernetes/sidecar.yaml', () => {
  const docs = parseAllDocuments(readFileSync(join(REPO, 'deploy', 'kubernetes', 'sidecar.yaml'), 'utf8')).map((d) => d.toJS() as any);

  it('embeds a config that passes validation', () => {
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'warden-config');
    const config = parseConfig(cm.data['warden.yaml'], 'sidecar.yaml#warden.yaml');
    expect(config.identity.methods).toEqual(['kubernetes']);
    expect(config.identity.kubernetes?.audiences).toEqual(['warden']);
    expect(config.audit.required).toBe(true);
  });

  it('runs Warden as a native sidecar, non-root, read-only root filesystem, token audience warden', () => {
    const deploy = docs.find((d) => d.kind === 'Deployment');
    const spec = deploy.spec.template.spec;
    const warden = spec.initContainers.find((c: any) => c.name === 'warden');
    expect(warden.restartPolicy).toBe('Always');
    expect(warden.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(warden.securityContext.runAsUser).not.toBe(0);
    expect(warden.readinessProbe.httpGet.path).toBe('/readyz');
    const token = spec.volumes.find((v: any) => v.name === 'warden-token');
    expect(token.projected.sources[0].serviceAccountToken.audience).toBe('warden');
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
});

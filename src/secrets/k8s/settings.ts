/**
 * Where the Kubernetes Secret store is and what it may be asked for (secrets.kubernetes): the
 * in-cluster defaults (the API server from KUBERNETES_SERVICE_HOST/PORT, the pod's mounted
 * service-account token, cluster CA and namespace), explicit overrides for a Warden run outside
 * the cluster. Read at start (and reload, `warden templates lint --config`), synchronously, before
 * the event loop serves anything: each file is a small regular file capped in size.
 */
import { FileTooLargeError, readFailure, readRegularFileSync } from '../../pipeline/regular-file.js';
import { MIB } from '../../pipeline/sizes.js';
import type { K8sNamespaces } from '../../pipeline/secret-access.js';
import { isNamespaceName } from '../../pipeline/kubernetes-names.js';

/** The directory the kubelet mounts a pod's service-account credentials in. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const DEFAULT_TOKEN_FILE = `${SERVICE_ACCOUNT_DIR}/token`;
export const DEFAULT_CA_FILE = `${SERVICE_ACCOUNT_DIR}/ca.crt`;
export const DEFAULT_NAMESPACE_FILE = `${SERVICE_ACCOUNT_DIR}/namespace`;
/** Lease of a value read from the API: a Secret updated in the cluster is used within a minute. */
export const K8S_SECRET_TTL_MS = 60_000;
export const DEFAULT_K8S_REQUEST_TIMEOUT_MS = 5_000;
/**
 * The largest answer read. The API server caps a Secret at 1 MiB of data; base64 makes that about
 * 1.4 MiB of JSON, and metadata (managedFields, annotations) adds some.
 */
export const DEFAULT_K8S_MAX_RESPONSE_BYTES = 2 * MIB;
/** The largest ca_file read: a CA bundle is a few KB, a whole system bundle a few hundred. */
const MAX_CA_FILE_BYTES = MIB;
/** The largest token_file read (at start and before every fetch): a projected token is about 1 KB. */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/** A namespace name the API server could hold: a DNS-1123 label of at most 63 characters (the identity module's rule). */
export const isK8sNamespace: (v: string) => boolean = isNamespaceName;

/** The secrets.kubernetes section as the config schema yields it (paths made absolute by the loader). */
export interface KubernetesSecretsSection {
  api_url?: string | undefined;
  token_file: string;
  ca_file: string;
  namespaces?: string[] | undefined;
  request_timeout_ms: number;
  max_response_bytes: number;
  ttl_ms: number;
}

/** A store that cannot work as configured: stops the start (or reload), naming the key, never a file's content. */
export class K8sStoreConfigError extends Error {
  constructor(message: string) {
    super(`secrets.kubernetes: ${message}`);
    this.name = 'K8sStoreConfigError';
  }
}

function fileProblem(err: unknown): string {
  if (err instanceof FileTooLargeError) return `the file is ${err.size} bytes, more than the ${err.limit} it may have`;
  return readFailure(err);
}

/**
 * The API server's base URL: `api_url` when set, else the in-cluster service the kubelet
 * announces in every container's environment (KUBERNETES_SERVICE_HOST, _PORT). Outside a cluster
 * without `api_url` there is none: an error naming the key to set.
 */
export function k8sApiUrl(section: KubernetesSecretsSection, env: NodeJS.ProcessEnv = process.env): URL {
  if (section.api_url !== undefined) return new URL(section.api_url);
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  if (host === undefined || host === '') {
    throw new K8sStoreConfigError('api_url is not set and KUBERNETES_SERVICE_HOST is not in the environment (Warden is not running in a pod): set api_url');
  }
  // An IPv6 service address goes in brackets; anything the URL parser cannot take is refused
  // rather than guessed at (the variable is the platform's, not a user's).
  let url: URL;
  try {
    url = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
  } catch {
    throw new K8sStoreConfigError('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT do not make a URL: set api_url');
  }
  if (url.pathname !== '/' || url.username !== '' || url.search !== '') {
    throw new K8sStoreConfigError('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT do not make a URL: set api_url');
  }
  return url;
}

/** The CA bundle the API server's certificate is checked against (the cluster CA in-cluster). */
export function k8sCa(section: KubernetesSecretsSection): string {
  let ca: string;
  try {
    ca = readRegularFileSync(section.ca_file, MAX_CA_FILE_BYTES);
  } catch (err) {
    throw new K8sStoreConfigError(`cannot read ca_file ${section.ca_file} (${fileProblem(err)})`);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new K8sStoreConfigError(`ca_file ${section.ca_file} holds no PEM certificate`);
  return ca;
}

/**
 * What a token file holds, checked: one token (printable ASCII, no space), one trailing newline
 * allowed. Undefined when it holds anything else: the caller says so without quoting it.
 */
export function tokenOf(text: string): string | undefined {
  const token = text.replace(/\r?\n$/, '');
  return /^[\x21-\x7e]+$/.test(token) ? token : undefined;
}

/** Checks at start that the token file is there and holds a token (it is read again before each fetch: it rotates). */
export function checkK8sTokenFile(section: KubernetesSecretsSection): void {
  let text: string;
  try {
    text = readRegularFileSync(section.token_file, MAX_TOKEN_FILE_BYTES);
  } catch (err) {
    throw new K8sStoreConfigError(`cannot read token_file ${section.token_file} (${fileProblem(err)})`);
  }
  if (tokenOf(text) === undefined) throw new K8sStoreConfigError(`token_file ${section.token_file} does not hold one token`);
}

/**
 * The namespaces a template's `k8s://` refs may name. `namespaces` when set (an empty list: none);
 * else Warden's own namespace, from the pod's service-account mount.
 */
export function k8sNamespaces(section: KubernetesSecretsSection | undefined, namespaceFile = DEFAULT_NAMESPACE_FILE): K8sNamespaces {
  if (section === undefined) return { namespaces: [], why: 'k8s refs are not allowed in templates: secrets.kubernetes is not set' };
  if (section.namespaces !== undefined) {
    return section.namespaces.length > 0 ? { namespaces: section.namespaces } : { namespaces: [], why: 'k8s refs are not allowed in templates: secrets.kubernetes.namespaces is empty' };
  }
  let text: string;
  try {
    text = readRegularFileSync(namespaceFile, 256);
  } catch (err) {
    return { namespaces: [], why: `k8s refs are not allowed in templates: secrets.kubernetes.namespaces is not set and Warden's own namespace cannot be read from ${namespaceFile} (${fileProblem(err)})` };
  }
  const ns = text.trim();
  if (!isK8sNamespace(ns)) {
    return { namespaces: [], why: `k8s refs are not allowed in templates: secrets.kubernetes.namespaces is not set and ${namespaceFile} holds no namespace name` };
  }
  return { namespaces: [ns] };
}

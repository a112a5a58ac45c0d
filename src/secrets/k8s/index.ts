/** The Kubernetes Secret store (`k8s://namespace/name#key`): its settings and its provider. */
export { createK8sSecretProvider } from './provider.js';
export type { K8sSecretProvider, K8sSecretProviderOptions } from './provider.js';
export {
  checkK8sTokenFile,
  DEFAULT_CA_FILE,
  DEFAULT_K8S_MAX_RESPONSE_BYTES,
  DEFAULT_K8S_REQUEST_TIMEOUT_MS,
  DEFAULT_NAMESPACE_FILE,
  DEFAULT_TOKEN_FILE,
  isK8sNamespace,
  k8sApiUrl,
  k8sCa,
  K8sStoreConfigError,
  k8sNamespaces,
  K8S_SECRET_TTL_MS,
} from './settings.js';
export type { KubernetesSecretsSection } from './settings.js';

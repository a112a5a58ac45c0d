/** Configuration: schema, loading, validation. */
export {
  ConfigSchema,
  ProviderSchema,
  secretRef,
  type Config,
  type ConfigInput,
  type ProviderConfig,
  type OpenAIProviderConfig,
  type EchoProviderConfig,
  type AuditSinkConfig,
  type IdentityConfig,
  type PolicyConfig,
  type LimitsConfig,
  type LogConfig,
  type RedactionConfigInput,
} from './schema.js';
export { loadConfig, parseConfig, defaultConfig, configDirOf, type Env, type LoadOptions } from './load.js';
export { ConfigError, isConfigError, formatProblem, type ConfigProblem } from './errors.js';
export { configWarnings } from './warnings.js';
export { parseListen, formatListen, isLoopbackHost, type ListenAddress } from './listen.js';

/** Ingress limits, filled from the config's `limits` section by the runtime. */
export interface IngressLimits {
  /** Largest accepted request body, in bytes (413 `payload_too_large` above it). */
  maxBodyBytes: number;
  /** Largest accepted request header block, in bytes (node's `maxHeaderSize`; 431 above it). */
  maxHeaderBytes: number;
  /** Most template variables one request may carry. */
  maxVariables: number;
  /** Longest variable value, in characters (a template may declare a shorter one). */
  maxVariableLength: number;
  /** How long a client may take to send its request, in milliseconds (node's `requestTimeout`). */
  requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: IngressLimits = {
  maxBodyBytes: 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxVariables: 64,
  maxVariableLength: 32 * 1024,
  requestTimeoutMs: 120_000,
};

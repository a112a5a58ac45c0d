/** Audit: records, the hash chain, sinks, the log, the audit stage and `warden audit verify`. */
export { buildAuditRecord, promptHmac } from './record.js';
export type { AuditRecordOptions } from './record.js';
export { canonicalJson } from './canonical.js';
export { ChainVerifier, computeRecordHash, GENESIS, GENESIS_HASH, linkRecord, verifyChain } from './chain.js';
export type { AuditRecordBody, ChainCheck, ChainHead, ChainVerification } from './chain.js';
export { createFileSink, createStreamSink, processStreamWritable, readLastLine } from './sinks.js';
export type { AuditSink, LineWritable } from './sinks.js';
export { createAuditLog } from './log.js';
export type { AuditLogHandle, AuditLogOptions } from './log.js';
export { createAuditStage, hmacKeyLongEnough, MIN_HMAC_KEY_BYTES } from './stage.js';
export type { AuditStage, AuditStageOptions } from './stage.js';
export { runAuditCli } from './cli.js';
export type { CliIO } from './cli.js';

/**
 * One request's redaction: walks every message shape (OpenAI and Anthropic content strings and
 * part arrays, tool calls, tool definitions), redacts the prompt, refuses it for `block`
 * entities and leaked secrets, and on the way back restores placeholders and redacts PII the
 * model produced. The token vault lives here and dies with the request.
 */
import { WardenError } from '../pipeline/errors.js';
import type { RedactionReport, RedactionSession } from '../pipeline/ports.js';
import { isDocumentedFinishReason } from '../pipeline/types.js';
import type {
  ChatMessage,
  CompletionChunk,
  CompletionResult,
  ContentPart,
  RedactionMode,
  TextProvenance,
  ToolCall,
  ToolDefinition,
} from '../pipeline/types.js';
import { scanPromptText, type FindingsCache, type PromptScan } from './findings-cache.js';
import { jsonEscapeReadings, LEAK_ENTITY, LeakGuard } from './leak-guard.js';
import { toOriginalSpan, unitAround, type FoldedText } from './normalize.js';
import { JSON_TEXT_START, jsonLiterals, type JsonLexState, type JsonLiteral } from './json-literals.js';
import { applyFindings, applyJsonFindings, createReplacer, TokenVault, type Replacer } from './modes.js';
import type { RedactionPlan } from './profiles.js';
import { compatibilityReading, foldedReading, placeholderReading, TAG_HIGH_SURROGATE } from './placeholder-escapes.js';
import { mayHoldJsonPlaceholder, PLACEHOLDER, restorePlaceholders } from './restore.js';
import { resolveOverlaps, type Scanner, type ScanOptions } from './scanner.js';
import { keptStop, processChunkStream } from './stream.js';
import type { Finding, StreamSecretHold } from './types.js';

/** Part types whose `text` field is prose to redact. */
const TEXT_PART_TYPES = new Set(['text', 'input_text', 'output_text']);

export interface SessionOptions {
  scanner: Scanner;
  plan: RedactionPlan;
  hashKey: Buffer | undefined;
  /** Refused in the prompt. */
  secrets: readonly string[];
  /** Masked in the answer (default: `secrets`). */
  answerSecrets?: readonly string[];
  maxHoldBack: number;
  /** What the stream holds back for the leak guard (default `window`): see StreamSecretHold. */
  secretHold?: StreamSecretHold;
  /** Prompt findings shared across requests (see findings-cache.ts); absent: scan every time. */
  findingsCache?: FindingsCache | undefined;
}

/**
 * What makes a text with a backslash worth decoding for placeholders: a `<` written as a JSON
 * escape, or an HTML reference or percent escape that may stand for one, written as they are or
 * with JSON escapes (Go's encoder writes `&` as `\\u0026`: "\\u0026lt;EMAIL_ADDRESS_1\\u0026gt;"), or a
 * fullwidth or small `<` written as one (`\\uff1c`), or a tag character (`\\udb40\\udc3c`, the
 * tag `<`: see foldedReading).
 */
const ESCAPE_MAY_HOLD = /\\u003c|\\u0026|\\u0025|\\uff1c|\\ufe64|\\udb40|[&%]/i;

/**
 * Reserves in `vault` every placeholder-shaped text in `input` (strings and member names, at any
 * depth). Per request on every tokenizing plan, over the whole prompt: a plain walk (no
 * Object.entries arrays), and a text is matched only when it holds a `<`, a backslash, `&` or `%`. A
 * prompt text is read with its JSON string escapes decoded too (see scanPromptText), tool-call
 * arguments and tool results above all: a placeholder written with escapes
 * (`\u003cEMAIL_ADDRESS_1>`) is one to the model, so it is reserved as well; so is one written
 * with HTML references or percent escapes (placeholder-escapes.ts).
 */
function reservePlaceholdersIn(v: unknown, vault: TokenVault): void {
  if (typeof v === 'string') {
    const lt = v.indexOf('<') >= 0;
    if (lt) for (const m of v.matchAll(PLACEHOLDER)) vault.reserve(m[0]);
    // HTML references and percent escapes (`&lt;EMAIL_ADDRESS_1&gt;`), and fullwidth forms
    // (`＜EMAIL_ADDRESS_1＞`): read decoded and folded as well.
    reserveEscapedIn(v, vault);
    // Decoded only when it can hold a placeholder: a `<`, as written or escaped.
    if (v.indexOf('\\') >= 0 && (lt || ESCAPE_MAY_HOLD.test(v))) {
      // Every level of escapes (a placeholder in JSON inside a JSON string reads `\\u003c…`),
      // each read for HTML references and percent escapes too.
      for (const r of jsonEscapeReadings(v)) {
        reserveMatchesIn(r.text, vault);
        reserveEscapedIn(r.text, vault);
      }
    }
  } else if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) reservePlaceholdersIn(v[i], vault);
  } else if (v !== null && typeof v === 'object') {
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      if (
        k.indexOf('<') >= 0 ||
        k.indexOf('\\') >= 0 ||
        k.indexOf('&') >= 0 ||
        k.indexOf('%') >= 0 ||
        k.indexOf('\uFF1C') >= 0 ||
        k.indexOf('\uFE64') >= 0 ||
        k.indexOf(TAG_HIGH_SURROGATE) >= 0
      ) {
        reservePlaceholdersIn(k, vault);
      }
      reservePlaceholdersIn((v as Record<string, unknown>)[k], vault);
    }
  }
}

/**
 * Reserves the placeholders `text` holds written with HTML references or percent escapes, or with
 * compatibility characters (fullwidth `＜EMAIL_ADDRESS_1＞`), or both (placeholder-escapes.ts).
 */
function reserveEscapedIn(text: string, vault: TokenVault): void {
  if (text.indexOf('&') >= 0 || text.indexOf('%') >= 0) {
    const decoded = placeholderReading(text);
    if (decoded !== null) {
      reserveMatchesIn(decoded, vault);
      reserveMatchesIn(compatibilityReading(decoded), vault);
      reserveMatchesIn(foldedReading(decoded), vault);
    }
  }
  reserveMatchesIn(compatibilityReading(text), vault);
  reserveMatchesIn(foldedReading(text), vault);
}

function reserveMatchesIn(text: string | null, vault: TokenVault): void {
  if (text !== null && text.indexOf('<') >= 0) for (const m of text.matchAll(PLACEHOLDER)) vault.reserve(m[0]);
}

/** A message's texts as the model reads them joined: its content string or text parts, then its refusal. */
function messageTexts(m: ChatMessage): string[] {
  const texts: string[] = [];
  if (typeof m.content === 'string') texts.push(m.content);
  else if (Array.isArray(m.content)) for (const p of m.content) pushDefined(texts, promptPartText(p));
  if (typeof m.refusal === 'string') texts.push(m.refusal);
  return texts;
}

/**
 * A message's texts are redacted joined (promptMessageTexts), so a placeholder the caller split
 * across two of them (`literal <EMAIL_` | `ADDRESS_1>`) is one the model reads whole: it is
 * reserved too, or Warden could mint the same token for a real value and restore the caller's
 * literal as that value. Only messages with two texts or more (the plain walk saw the rest).
 */
function reserveJoinedPlaceholdersIn(messages: readonly ChatMessage[], vault: TokenVault): void {
  for (const m of messages) {
    if (typeof m.content === 'string' && m.refusal === undefined) continue;
    const texts = messageTexts(m);
    if (texts.length > 1) reservePlaceholdersIn(texts.join(''), vault);
  }
}

/**
 * The member names of the objects of one JSON text as they go out, each with the name it came
 * from: two different names that go out alike would be one member.
 */
class MemberNames {
  private readonly byObject = new Map<number, Map<string, { original: string; entities: ReadonlySet<string> }>>();
  private objects = 0;

  /** A number for the next object of a JSON tree (a tree has no offsets to name its objects by). */
  nextObject(): number {
    return this.objects++;
  }

  /**
   * Records `out`, the outgoing name of `original` in `object`, redacted for `entities`. When a
   * different name of the object already went out as `out`: the entity types of both (one of
   * them may be a name without a finding, `[EMAIL_ADDRESS]` as the caller wrote it).
   */
  clash(object: number, original: string, out: string, entities: ReadonlySet<string>): ReadonlySet<string> | null {
    let names = this.byObject.get(object);
    if (names === undefined) this.byObject.set(object, (names = new Map()));
    const before = names.get(out);
    if (before === undefined) {
      names.set(out, { original, entities });
      return null;
    }
    return before.original === original ? null : new Set([...before.entities, ...entities]);
  }
}

/** Phone validations a stream keeps between its pieces at most (see outputFindings). */
const KEPT_PHONE_VALIDATIONS = 128;

export class Session implements RedactionSession {
  private readonly scanner: Scanner;
  private readonly plan: RedactionPlan;
  private readonly findingsCache: FindingsCache | undefined;
  private readonly vault = new TokenVault();
  private readonly replacer: Replacer;
  /** The prompt's leak guard (refuses the request). */
  private readonly guard: LeakGuard;
  /** The answer's (masks): also the secrets the template placed in the prompt on purpose. */
  private readonly answerGuard: LeakGuard;
  private readonly counts: Record<string, number> = {};
  private readonly responseCounts: Record<string, number> = {};
  private nonTextParts = 0;
  private leaks = 0;
  private failures = 0;
  /** The phone validations a stream's scans share (made on the first piece scanned with context). */
  private phoneValidations: Map<string, boolean> | undefined;
  /**
   * The scan options of a stream's pieces: the plan's, with the shared phone validations and
   * `from` set for each piece. One object for the stream (made on its first piece scanned with
   * context) instead of a spread copy of the plan's options for every piece.
   */
  private pieceScan: ScanOptions | undefined;
  /** Entity types found in the prompt whose mode is `block` (made on the first). */
  private blocked: Set<string> | null = null;
  /** Entity types found in tool call ids (made on the first): see checkId. */
  private inIds: Set<string> | null = null;
  /** Entity types found in function names (made on the first): see checkFunctionName. */
  private inFunctionNames: Set<string> | null = null;
  /** Entity types found in image URLs (made on the first): see checkImageUrl. */
  private inImageUrls: Set<string> | null = null;
  /** Entity types in member names that redacted alike (made on the first): see promptJsonName. */
  private nameClashes: Set<string> | null = null;
  private promptLeaks = 0;
  readonly maxHoldBack: number;
  /** A session's, not the guard's: guards are shared by secrets (LeakGuard.for), whatever the mode. */
  private readonly secretHold: StreamSecretHold;

  constructor(opts: SessionOptions) {
    this.scanner = opts.scanner;
    this.plan = opts.plan;
    this.findingsCache = opts.findingsCache;
    this.replacer = createReplacer(this.vault, opts.hashKey);
    this.guard = LeakGuard.for(opts.secrets);
    this.answerGuard = opts.answerSecrets === undefined || opts.answerSecrets === opts.secrets ? this.guard : LeakGuard.for(opts.answerSecrets);
    this.maxHoldBack = opts.maxHoldBack;
    this.secretHold = opts.secretHold ?? 'window';
  }

  // ---------------------------------------------------------------- prompt

  /**
   * `provenance` (the render stage's, by message index) lets the findings cache name a rendered
   * content string by what produced it instead of hashing it; the cache checks that the content is
   * still the rendered text. Parts and tool calls never use it.
   */
  redactMessages(messages: ChatMessage[], provenance?: ReadonlyArray<TextProvenance | undefined>): ChatMessage[] {
    this.reserveInputPlaceholders(messages);
    if (this.plan.usesTokenize) reserveJoinedPlaceholdersIn(messages, this.vault);
    const out = messages.map((m, i) => this.redactMessage(m, provenance?.[i]));
    this.throwIfRefused();
    return out;
  }

  /**
   * Redacts tool definitions: descriptions, and every string and member name in the parameter
   * schema (a property named by PII is redacted as its `required` entry is, so the two still match).
   */
  redactTools(tools: ToolDefinition[]): ToolDefinition[] {
    this.reserveInputPlaceholders(tools);
    const names = new MemberNames();
    const out = tools.map((t) => {
      this.checkFunctionName(t.function.name);
      const fn: ToolDefinition['function'] = { ...t.function };
      if (typeof fn.description === 'string') fn.description = this.promptText(fn.description);
      if (fn.parameters !== undefined) fn.parameters = this.promptJsonValue(fn.parameters, names);
      return { ...t, function: fn };
    });
    this.throwIfRefused();
    return out;
  }

  /** Redacts every string and member name in the pass-through parameters (`metadata` keys...). */
  redactParams(params: Readonly<Record<string, unknown>>): Record<string, unknown> {
    this.reserveInputPlaceholders(params);
    for (const name of functionNamesInParams(params)) this.checkFunctionName(name);
    const out = this.promptJsonValue(params, new MemberNames()) as Record<string, unknown>;
    this.throwIfRefused();
    return out;
  }

  /** Redacts one plain text as a prompt (used by the CLI); throws like redactMessages. */
  redactText(text: string): string {
    const out = this.promptText(text);
    this.throwIfRefused();
    return out;
  }

  /**
   * Every placeholder-shaped text in `input` (strings and member names, at any depth) is reserved
   * in the vault before anything of it is redacted: see TokenVault.reserve. Only plans that
   * tokenize mint placeholders, so only they look.
   */
  private reserveInputPlaceholders(input: unknown): void {
    if (this.plan.usesTokenize) reservePlaceholdersIn(input, this.vault);
  }

  private redactMessage(m: ChatMessage, provenance: TextProvenance | undefined): ChatMessage {
    const copy: ChatMessage = { ...m };
    this.promptMessageTexts(m, copy, provenance);
    if (typeof m.name === 'string') copy.name = this.promptName(m.name);
    if (typeof m.tool_call_id === 'string') this.checkId(m.tool_call_id);
    if (m.tool_calls) copy.tool_calls = m.tool_calls.map((tc) => this.promptToolCall(tc));
    return copy;
  }

  /**
   * A message's text: its content (a string, or its text and refusal parts) and its refusal (an
   * answer's refusal sent back as history is the model's text, redacted as content is). The model
   * reads them as one text, so a value split across two parts (`jane.doe@exa` | `mple.com`) is
   * found in their concatenation and replaced in the part where it begins, as the answer side
   * does (see redactJoined); the parts keep their shape. A message with one text takes the plain
   * path, where a rendered string keeps its provenance (findings cache, placed secrets).
   */
  private promptMessageTexts(m: ChatMessage, copy: ChatMessage, provenance: TextProvenance | undefined): void {
    const parts = Array.isArray(m.content) ? m.content : undefined;
    const texts = messageTexts(m);
    if (texts.length <= 1) {
      if (typeof m.content === 'string') copy.content = this.promptText(m.content, provenance);
      else if (parts) copy.content = parts.map((p) => this.promptPart(p));
      if (typeof m.refusal === 'string') copy.refusal = this.promptText(m.refusal);
      return;
    }
    const out = this.promptJoined(texts);
    let k = 0;
    if (typeof m.content === 'string') copy.content = out[k++]!;
    else if (parts) {
      // A text part the value before it swallowed whole (`jane.doe@` | `example` | `.com`) is
      // dropped, not sent as `""`: the model reads the same text, and Anthropic (behind an
      // OpenAI-compatible gateway too) refuses an empty text block. The caller's own empty parts stay.
      const content: typeof parts = [];
      for (const p of parts) {
        const text = promptPartText(p);
        if (text === undefined) {
          content.push(this.promptPart(p));
          continue;
        }
        const redacted = out[k++]!;
        if (redacted !== '' || text === '') content.push(withPartText(p, redacted));
      }
      copy.content = content;
    }
    if (typeof m.refusal === 'string') copy.refusal = out[k]!;
  }

  /** Prompt texts the model reads joined, redacted as the answer's are (see redactJoined), then leak-guarded joined. */
  private promptJoined(texts: readonly string[]): string[] {
    const scan = (text: string): readonly Finding[] => {
      const res = this.scanPrompt(text);
      this.noteBlocked(res.seen);
      return res.findings;
    };
    const out = redactJoined(texts, scan, (slice, findings) => applyFindings(slice, findings, this.promptModeOf, this.replacer, this.counts));
    // Joined: a secret split across two parts is one the model reads whole.
    this.guardPrompt(out.join(''));
    return out;
  }

  private promptToolCall(tc: ToolCall): ToolCall {
    this.checkId(tc.id);
    this.checkFunctionName(tc.function.name);
    return { ...tc, function: { ...tc.function, arguments: this.promptJsonText(tc.function.arguments) } };
  }

  /**
   * A participant name is redacted like text, except that placeholders with `<` and `>` (tokenize,
   * hash) become the mask: OpenAI refuses those characters in a name, and a name is a label, not
   * something the answer needs restored.
   */
  private promptName(name: string): string {
    if (name.length === 0) return name;
    const res = this.scanPrompt(name);
    return this.applyPrompt(name, res.findings, res.seen, this.nameModeOf);
  }

  private nameModeOf = (entity: string): RedactionMode => {
    const m = this.promptModeOf(entity);
    return m === 'tokenize' || m === 'hash' ? 'mask' : m;
  };

  /**
   * Tool call ids (`tool_calls[].id`, `tool_call_id`) pair a call with its result (and a file
   * part's `file_id` names the provider's file), so they are not
   * rewritten (two ids masked alike would pair wrongly). An id the provider made never holds PII,
   * so one that does refuses the request (checked in throwIfRefused), as does a secret value.
   */
  private checkId(id: string): void {
    if (id.length === 0) return;
    const res = this.scanPrompt(id);
    for (const f of res.findings) (this.inIds ??= new Set()).add(f.entity);
    this.guardPrompt(id);
  }

  /**
   * A function name (a tool's, a tool call's, `tool_choice`'s, legacy `functions` and
   * `function_call`) names a tool the app defined and matches it by name: rewritten in one place
   * and not another (or masked alike in two tools) it would name no tool, or the wrong one. So it
   * is not rewritten; one that holds PII refuses the request (checked in throwIfRefused), as does
   * a secret value. A name without a finding redacts to itself wherever else it is read.
   */
  private checkFunctionName(name: unknown): void {
    if (typeof name !== 'string' || name.length === 0) return;
    const res = this.scanPrompt(name);
    for (const f of res.findings) (this.inFunctionNames ??= new Set()).add(f.entity);
    this.guardPrompt(name);
  }

  private promptPart(p: ContentPart): ContentPart {
    const rec = p as Record<string, unknown>;
    if (p.type === 'tool_use') this.checkFunctionName(rec['name']);
    if (TEXT_PART_TYPES.has(p.type) && typeof rec['text'] === 'string') return { ...p, text: this.promptText(rec['text']) } as ContentPart;
    // An assistant turn's refusal part (OpenAI) is the model's text, sent back as history.
    if (p.type === 'refusal' && typeof rec['refusal'] === 'string') return { ...p, refusal: this.promptText(rec['refusal']) };
    if (p.type === 'tool_use' && rec['input'] !== undefined) return { ...p, input: this.promptJsonObject(rec['input']) };
    if (p.type === 'tool_result') {
      const c = rec['content'];
      if (typeof c === 'string') return { ...p, content: this.promptText(c) };
      if (Array.isArray(c)) return { ...p, content: (c as ContentPart[]).map((q) => this.promptPart(q)) };
      return p;
    }
    this.nonTextParts++;
    if (p.type === 'image_url') {
      const image = rec['image_url'];
      if (image !== null && typeof image === 'object') this.checkImageUrl((image as Record<string, unknown>)['url']);
      return p;
    }
    // A file's name is text the caller chose (`cv-jane.doe@example.com.pdf`); its data is not. Its id
    // names a file the provider holds, so it is not rewritten; ingress holds it to an id's shape
    // (server/parts.ts), which `536-22-1234` or a card's digits still fit: one holding PII refuses
    // the request, as a tool call id does.
    const file = rec['file'];
    if (p.type !== 'file' || file === null || typeof file !== 'object') return p;
    const f = file as Record<string, unknown>;
    if (typeof f['file_id'] === 'string') this.checkId(f['file_id']);
    if (typeof f['filename'] === 'string') return { ...p, file: { ...f, filename: this.promptText(f['filename']) } };
    return p;
  }

  /**
   * An image part's URL (also a `/v1/messages` image block's: the adapter makes it one) is read
   * as prompt text: its query string or path can carry PII (`?email=…`) or a secret, and the
   * provider hands it to whatever host it names. It is not rewritten, since a rewritten URL
   * fetches another image or none; one that holds PII (an entity whose mode is not `allow`)
   * refuses the request (checked in throwIfRefused), and a `block` entity refuses it as anywhere.
   * Every secret resolved for the request is looked for, those the template placed in the prompt
   * included: a placed secret is for the model to read, not for a URL's host. A `data:` URL is
   * read without its base64 payload (opaque bytes, often megabytes): its media type and
   * parameters are read, and a payload that is not base64 (percent-encoded text) is read too.
   */
  private checkImageUrl(url: unknown): void {
    if (typeof url !== 'string' || url.length === 0) return;
    const text = imageUrlText(url);
    // The detectors read each query parameter on its own (spaces between): one that reads a
    // value up to the next space (PASSWORD after `Signature=`) would otherwise take the
    // parameters after it too, and with them PII that follows a signature. The leak guard reads
    // the URL as it is (a secret may hold '&').
    const res = this.scanPrompt(text === url ? url.replace(QUERY_SEPARATORS, ' ') : text);
    this.noteBlocked(res.seen);
    for (const f of res.findings) {
      const mode = this.promptModeOf(f.entity);
      if (mode !== 'allow' && mode !== 'block' && !URL_GRANTS.has(f.entity)) (this.inImageUrls ??= new Set()).add(f.entity);
    }
    if (!this.answerGuard.active) return;
    // As written, then as the provider's fetcher may read it: a secret written with JSON escapes
    // (`?e=\u0043ANARY…`) or percent escapes (`?e=%43ANARY…`, which the host it names decodes)
    // is the secret all the same. Each reading is asked only when the ones before found none.
    let n = this.answerGuard.find(text, []);
    if (n === 0 && text.indexOf('\\') >= 0) n = this.answerGuard.find(text, [], true);
    if (n === 0 && text.indexOf('%') >= 0) n = this.answerGuard.find(percentDecoded(text), []);
    this.notePromptLeaks(n);
  }

  /**
   * JSON in a string (tool-call arguments), redacted in place: each string value and member name
   * is decoded and redacted on its own; numbers are found as the answer side finds them, by
   * scanning the JSON text (so `"ssn": 536221234` has its context word), and one holding a finding
   * becomes a JSON string of its redaction (`"[US_SSN]"`), so the JSON stays valid. Literals
   * without a finding are kept byte for byte: re-serialising would round numbers JavaScript
   * cannot hold exactly.
   */
  private promptJsonText(text: string): string {
    try {
      JSON.parse(text);
    } catch {
      return this.promptText(text);
    }
    const literals = jsonLiterals(text);
    const numbers = literals.some((l) => l.kind === 'number') ? this.scanPrompt(text).findings : [];
    const names = new MemberNames();
    const parts: string[] = [];
    let pos = 0;
    for (const lit of literals) {
      const raw = text.slice(lit.start, lit.end);
      const out =
        lit.kind === 'string' ? this.promptJsonString(raw) : lit.kind === 'name' ? this.promptJsonName(raw, lit.object, names) : this.promptJsonNumber(raw, lit, numbers);
      if (out === raw) continue;
      parts.push(text.slice(pos, lit.start), out);
      pos = lit.end;
    }
    if (pos === 0) return text;
    parts.push(text.slice(pos));
    return parts.join('');
  }

  private promptJsonString(raw: string): string {
    const value = JSON.parse(raw) as string;
    const out = this.promptText(value);
    return out === value ? raw : JSON.stringify(out);
  }

  /**
   * A member name, redacted as a string value is: a map keyed by e-mail addresses or phone
   * numbers holds PII in its names, which the schema did not fix. Two names of one object that
   * come out alike (`mask`: every address is `[EMAIL_ADDRESS]`) refuse the request
   * (`duplicate_member_names`) rather than be made unique: a suffix would be a name neither the
   * schema nor the model knows, a duplicate would let a parser keep one member and drop the other
   * (Anthropic `tool_use.input` is parsed back), and `tokenize` or `hash` keep them apart anyway.
   */
  private promptJsonName(raw: string, object: number, names: MemberNames): string {
    const value = JSON.parse(raw) as string;
    const out = this.promptMemberName(value, object, names);
    return out === value ? raw : JSON.stringify(out);
  }

  /** A member name of object number `object`, redacted (see promptJsonName). */
  private promptMemberName(name: string, object: number, names: MemberNames): string {
    if (name.length === 0) return name;
    const res = this.scanPrompt(name);
    const out = this.applyPrompt(name, res.findings, res.seen, this.promptModeOf);
    const clash = names.clash(object, name, out, res.seen);
    if (clash !== null) for (const e of clash) (this.nameClashes ??= new Set()).add(e);
    return out;
  }

  /** `findings`: of the whole JSON text; those over this number are clipped to it. */
  private promptJsonNumber(raw: string, lit: JsonLiteral, findings: readonly Finding[]): string {
    const inside: Finding[] = [];
    const seen = new Set<string>();
    for (const f of findings) {
      if (f.end <= lit.start || f.start >= lit.end) continue;
      // New objects: the findings may be the findings cache's, shared across requests.
      inside.push({ ...f, start: Math.max(f.start, lit.start) - lit.start, end: Math.min(f.end, lit.end) - lit.start });
      seen.add(f.entity);
    }
    const out = this.applyPrompt(raw, inside, seen, this.promptModeOf);
    return out === raw ? raw : JSON.stringify(out);
  }

  /** A JSON value given as an object (Anthropic `tool_use.input`): redacted as its JSON text is. */
  private promptJsonObject(v: unknown): unknown {
    const text = JSON.stringify(v);
    if (text === undefined) return v;
    const out = this.promptJsonText(text);
    return out === text ? v : JSON.parse(out);
  }

  /**
   * A JSON value given as a tree (tool schemas, pass-through parameters): strings redacted as
   * text, member names as in tool-call arguments (promptMemberName: the same redaction, and two
   * names of one object that come out alike refuse the request). `names` numbers the objects.
   */
  private promptJsonValue(v: unknown, names: MemberNames): unknown {
    if (typeof v === 'string') return this.promptText(v);
    if (typeof v === 'number') return this.promptNumber(v);
    if (Array.isArray(v)) return v.map((x) => this.promptJsonValue(x, names));
    if (v !== null && typeof v === 'object') {
      const object = names.nextObject();
      // fromEntries defines members: a "__proto__" member stays a member, as JSON.parse made it.
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [this.promptMemberName(k, object, names), this.promptJsonValue(x, names)]));
    }
    return v;
  }

  /**
   * A JSON number in a parameter or a tool schema (`user: 4111111111111111`, an `enum` of phone
   * numbers) leaves the pod as its decimal text, so that text is scanned and leak-guarded as a
   * string is. One holding a finding becomes the string of its redaction, as a number in
   * tool-call arguments does (promptJsonText); any other stays the number it was.
   */
  private promptNumber(v: number): number | string {
    const text = String(v);
    const out = this.promptText(text);
    return out === text ? v : out;
  }

  private promptModeOf = (entity: string): RedactionMode => this.plan.modes.get(entity) ?? 'mask';

  /**
   * A secret value the template placed (`provenance.secretSpans`, valid only for the very text it
   * rendered) is the credential the decision granted: it goes upstream as fetched, so findings
   * inside it are not replaced (an address rewritten inside a password would send a credential
   * nobody issued, and the rest of the value would no longer be one the leak guard recognises).
   * A `block` entity inside it still refuses the request (applyPrompt reads `seen`): the value is
   * sent whole or not at all.
   */
  private promptText(text: string, provenance?: TextProvenance): string {
    if (text.length === 0) return text;
    const res = this.scanPrompt(text, provenance);
    const spans = provenance !== undefined && provenance.text === text ? provenance.secretSpans : undefined;
    const findings = spans !== undefined && spans.length > 0 && res.findings.length > 0 ? outsideSpans(res.findings, spans) : res.findings;
    return this.applyPrompt(text, findings, res.seen, this.promptModeOf);
  }

  private scanPrompt(text: string, provenance?: TextProvenance): PromptScan {
    const res = this.findingsCache
      ? this.findingsCache.scanPrompt(text, this.plan, provenance)
      : scanPromptText(this.scanner, text, this.plan.scan);
    this.failures += res.failures;
    return res;
  }

  /** Notes `block` entities among `seen`, replaces `findings`, and runs the leak guard on the result. */
  private applyPrompt(text: string, findings: readonly Finding[], seen: ReadonlySet<string>, modeOf: (entity: string) => RedactionMode): string {
    this.noteBlocked(seen);
    const out = applyFindings(text, findings, modeOf, this.replacer, this.counts);
    this.guardPrompt(out);
    return out;
  }

  /** Notes the `block` entities among `seen` (the request is refused in throwIfRefused). */
  private noteBlocked(seen: ReadonlySet<string>): void {
    if (!this.plan.usesBlock || seen.size === 0) return;
    for (const e of seen) if (this.plan.modes.get(e) === 'block') (this.blocked ??= new Set()).add(e);
  }

  /**
   * A secret value in `text` refuses the request. Read as written and, when the text holds a
   * backslash, with its JSON string escapes decoded as well (the model reads `\u0043ANARY…` in a
   * tool result or pasted JSON as the value, see scanPromptText): both, since a value may hold
   * what reads as an escape (`pa\ss\nword`). A value found both ways at one place counts once.
   */
  private guardPrompt(text: string): void {
    if (!this.guard.active) return;
    const hits: Finding[] = [];
    let n = this.guard.find(text, hits);
    if (text.indexOf('\\') >= 0) {
      const plain = n;
      this.guard.find(text, hits, true);
      for (let i = plain; i < hits.length; i++) {
        const d = hits[i]!;
        let known = false;
        for (let k = 0; k < plain && !known; k++) known = hits[k]!.start < d.end && d.start < hits[k]!.end;
        if (!known) n++;
      }
    }
    this.notePromptLeaks(n);
  }

  /**
   * Secret values the prompt holds where it may not: they refuse the request (throwIfRefused), and
   * are counted as the answer's masked ones are, under SECRET_VALUE in `counts`, so the audit
   * record and `warden_redactions_total{entity="SECRET_VALUE"}` show the refused leak too.
   */
  private notePromptLeaks(n: number): void {
    if (n === 0) return;
    this.promptLeaks += n;
    this.leaks += n;
    this.counts[LEAK_ENTITY] = (this.counts[LEAK_ENTITY] ?? 0) + n;
  }

  private throwIfRefused(): void {
    if (this.promptLeaks > 0) {
      throw new WardenError('redaction_blocked', 'prompt contains a secret value this request may not send', {
        details: { reason: 'secret_leak', entities: [LEAK_ENTITY], leaks: this.promptLeaks },
      });
    }
    if (this.blocked !== null) {
      const entities = [...this.blocked].sort();
      throw new WardenError('redaction_blocked', `prompt contains blocked entity types: ${entities.join(', ')}`, {
        details: { reason: 'blocked_entities', entities },
      });
    }
    if (this.inIds !== null) {
      const entities = [...this.inIds].sort();
      throw new WardenError('redaction_blocked', `an id (a tool call's or a file's) holds ${entities.join(', ')}; ids are passed on unchanged, so the request is refused`, {
        details: { reason: 'pii_in_id', entities },
      });
    }
    if (this.inFunctionNames !== null) {
      const entities = [...this.inFunctionNames].sort();
      throw new WardenError('redaction_blocked', `a function name holds ${entities.join(', ')}; function names are passed on unchanged, so the request is refused`, {
        details: { reason: 'pii_in_function_name', entities },
      });
    }
    if (this.inImageUrls !== null) {
      const entities = [...this.inImageUrls].sort();
      throw new WardenError('redaction_blocked', `an image URL holds ${entities.join(', ')}; image URLs are passed on unchanged, so the request is refused`, {
        details: { reason: 'pii_in_image_url', entities },
      });
    }
    if (this.nameClashes !== null) {
      const entities = [...this.nameClashes].sort();
      throw new WardenError(
        'redaction_blocked',
        `two member names of one object in tool-call arguments, a tool schema or a parameter redact to the same name (${entities.join(', ')}); names must stay unique, so the request is refused (tokenize or hash keeps them apart)`,
        { details: { reason: 'duplicate_member_names', entities } },
      );
    }
  }

  // ---------------------------------------------------------------- response

  /** Response modes: nothing can be refused mid-answer, and new tokens would be meaningless. */
  private responseModeOf = (entity: string): RedactionMode => {
    if (entity === LEAK_ENTITY) return 'mask';
    const m = this.plan.modes.get(entity) ?? 'mask';
    return m === 'tokenize' || m === 'block' ? 'mask' : m;
  };

  /**
   * Findings in `text` (model output) that end after `from`, clipped to start at `from`. `json`:
   * tool-call arguments, where the leak guard also reads through JSON string escapes.
   */
  outputFindings(text: string, from: number, json = false): Finding[] {
    // From 0 every finding counts (none ends at or before 0): the plan's options as they are.
    // A stream's piece (from > 0: the window before it is context) shares the stream's phone
    // validations with the scans of the pieces before it (see ScanOptions.phoneValidations).
    const shared = from === 0 ? undefined : (this.phoneValidations ??= new Map());
    let opts = this.plan.scan;
    if (shared !== undefined) {
      opts = this.pieceScan ??= { ...this.plan.scan, phoneValidations: shared };
      opts.from = from;
    }
    const res = this.scanner.scan(text, opts);
    // Kept small between pieces (at most ~8 KB): an open stream's memory is budgeted. A table's
    // window adds up to a few hundred digit strings per piece; in a benchmark of one, keeping 128
    // saved as much CPU as keeping 512 (~30 KB), and keeping none saved nothing.
    if (shared !== undefined && shared.size > KEPT_PHONE_VALIDATIONS) shared.clear();
    this.failures += res.failures;
    let findings = res.findings;
    if (this.answerGuard.active) {
      const hits: Finding[] = [];
      if (this.answerGuard.find(text, hits, json, res.folded, true) > 0) {
        findings = resolveOverlaps(findings.concat(hits.filter((h) => h.end > from)), text);
      }
    }
    if (text.indexOf('\\') >= 0) findings = this.escapedFindings(text, from, shared === undefined ? undefined : opts, findings, json);
    for (const f of findings) if (f.start < from) f.start = from;
    return findings;
  }

  /**
   * `findings` (of `text` as it is) with those of `text` read as a JSON parser reads it, its
   * string escapes decoded. Tool-call arguments are JSON, and so is a structured output's content
   * (`response_format`), which an SDK parses (openai's `chat.completions.parse`): an address or a
   * card written with escapes (`jane\u0040example.com`, `4111\u00201111…`) is PII to the app
   * that parses it, and so is a secret value (`\u0043ANARY…`) in content (in arguments the guard
   * reads through escapes already). Found in the decoded text and masked over the escapes as
   * written. Only a text that holds a backslash pays for this. `pieceOpts`: a stream piece's scan
   * options (its `from` is set to the decoded offset here), undefined for a whole text.
   */
  private escapedFindings(text: string, from: number, pieceOpts: ScanOptions | undefined, findings: Finding[], json: boolean): Finding[] {
    // Every escape decodes to one unit and is at least two: nothing decoded, nothing new to read.
    const readings = jsonEscapeReadings(text);
    if (readings.length === 0) return findings;
    const deepest = readings[readings.length - 1]!;
    const extra: Finding[] = [];
    for (let l = 0; l < readings.length; l++) {
      const view = readings[l]!;
      let opts = this.plan.scan;
      if (pieceOpts !== undefined) {
        // One unit back: `from` may fall inside an escape (one decoded unit), and a finding that
        // ends with that unit ends after `from` in the text as written. `added` below keeps
        // exactly the findings that end after `from` there.
        pieceOpts.from = Math.max(0, decodedOffset(view, from) - 1);
        opts = pieceOpts;
      }
      const res = this.scanner.scan(view.text, opts);
      this.failures += res.failures;
      // A reading above the deepest may end a finding inside a deeper escape (`njane@…` of
      // `line\\njane@…` read once): widened over it, as the plain findings of content are.
      const widen = l < readings.length - 1;
      for (const f of res.findings) {
        const [start, end] = toOriginalSpan(view, f.start, f.end);
        extra.push(widen ? { ...f, start: escapeAround(deepest, start, false), end: escapeAround(deepest, end, true) } : { ...f, start, end });
      }
    }
    if (!json && this.answerGuard.active) this.answerGuard.find(text, extra, true, undefined, true);
    // Content (structured output): a finding of the text as written that begins or ends inside an
    // escape (`line\njane@example.com` read as written holds `njane@…`) covers that whole escape,
    // or the answer would read `line\[EMAIL_ADDRESS]`, which no JSON parser takes. Widened, never
    // narrowed: moving the start past the escape would leave the `n` of a prose `C:\nancy@…` in
    // clear. Arguments keep their JSON at their own level by applyJsonFindings; escapes of a
    // deeper level (JSON inside an argument's string) are widened over as in content.
    const plain = !json ? overEscapes(findings, deepest) : readings.length === 1 ? findings : overEscapes(findings, deepest, readings[0]);
    const added = extra.filter((f) => f.end > from);
    if (added.length === 0) return plain;
    return resolveOverlaps(plain.concat(added), text);
  }

  secretHoldStart(text: string, json: boolean, label = false): number {
    const held = this.answerGuard.heldFrom(text, json, this.secretHold, label);
    // Content may be JSON an app parses (see escapedFindings): a value still arriving as escapes
    // (`\u0043\u0041NA`, or a cut `\u00`) is held as in tool-call arguments.
    if (json || label || held === 0 || text.indexOf('\\') < 0) return held;
    return Math.min(held, this.answerGuard.heldFrom(text, true, this.secretHold));
  }

  /**
   * Replaces findings, restores placeholders between them, and masks any secret that remains.
   * `json`: tool-call arguments, kept JSON (see applyJsonFindings); `at` is where `text` begins in
   * them (a streamed piece may begin inside a string).
   */
  renderOutput(text: string, findings: readonly Finding[], json: boolean, at: JsonLexState = JSON_TEXT_START): string {
    // Placeholders are restored only where one can be: this request minted tokens and the text
    // holds a '<' (every placeholder starts with one; in arguments also written `\u003c`).
    const restore =
      this.plan.reidentify && this.vault.size > 0 && (text.indexOf('<') >= 0 || (json && mayHoldJsonPlaceholder(text)))
        ? (seg: string): string => restorePlaceholders(seg, this.vault, json)
        : undefined;
    // Counted here (once per emitted piece), not where found: streaming looks at held text twice.
    for (const f of findings) if (f.entity === LEAK_ENTITY) this.leaks++;
    const out = json
      ? applyJsonFindings(text, findings, this.responseModeOf, this.replacer, this.responseCounts, at, restore)
      : applyFindings(text, findings, this.responseModeOf, this.replacer, this.responseCounts, restore);
    // `findings` hold every secret of `text` already; only a restored value can bring a new one
    // (a tokenized secret, or one that completes a secret with the text around it).
    if (!this.answerGuard.active || restore === undefined) return out;
    const hits: Finding[] = [];
    const n = this.answerGuard.find(out, hits, json, undefined, true);
    if (n === 0) return out;
    this.leaks += n;
    const masked = resolveOverlaps(hits, out);
    return json
      ? applyJsonFindings(out, masked, () => 'mask', this.replacer, this.responseCounts, at)
      : applyFindings(out, masked, () => 'mask', this.replacer, this.responseCounts);
  }

  /**
   * The outbound messages as a dry run shows them to its caller: secret values (placed by the
   * template on purpose, so still in the prompt) masked as [SECRET_VALUE]. The caller is the app,
   * which never holds the secrets Warden fetches for it. Not counted as leaks.
   */
  maskSecretsForCaller(messages: readonly ChatMessage[]): ChatMessage[] {
    if (!this.answerGuard.active) return messages.slice();
    const mask = (text: string): string => {
      const hits: Finding[] = [];
      if (this.answerGuard.find(text, hits, false, undefined, true) === 0) return text;
      return applyFindings(text, resolveOverlaps(hits, text), () => 'mask', this.replacer, {});
    };
    return messages.map((m) => {
      const out = typeof m.refusal === 'string' ? { ...m, refusal: mask(m.refusal) } : m;
      if (typeof m.content === 'string') return { ...out, content: mask(m.content) };
      if (Array.isArray(m.content)) {
        return { ...out, content: m.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? { ...p, text: mask(p.text) } : p)) };
      }
      return out;
    });
  }

  maskSecretsInJson(value: unknown): unknown {
    if (!this.answerGuard.active) return value;
    const mask = (text: string): string => {
      const hits: Finding[] = [];
      if (this.answerGuard.find(text, hits, false, undefined, true) === 0) return text;
      return applyFindings(text, resolveOverlaps(hits, text), () => 'mask', this.replacer, {});
    };
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return mask(v);
      // A number leaves the pod as its decimal text: one that holds a secret is shown as masked text.
      if (typeof v === 'number') {
        const text = String(v);
        const out = mask(text);
        return out === text ? v : out;
      }
      if (Array.isArray(v)) return v.map(walk);
      if (v === null || typeof v !== 'object') return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const name = mask(k);
        // Two names masked alike: shown as one, the other member would vanish from the dry run.
        if (Object.hasOwn(out, name)) {
          throw new WardenError('redaction_blocked', 'two member names of one object hold secret values that mask alike', { details: { reason: 'duplicate_member_names', entities: [LEAK_ENTITY] } });
        }
        // defineProperty: a "__proto__" member stays a member, as JSON.parse made it.
        Object.defineProperty(out, name, { value: walk(x), enumerable: true, writable: true, configurable: true });
      }
      return out;
    };
    return walk(value);
  }

  processOutputText(text: string, json: boolean): string {
    if (text.length === 0) return text;
    return this.renderOutput(text, this.outputFindings(text, 0, json), json);
  }

  processCompletion(result: CompletionResult, stopSequences: readonly string[] = NO_STOPS): CompletionResult {
    return {
      ...result,
      choices: result.choices.map((choice) => {
        const c = keptStop(choice, stopSequences);
        const m = c.message;
        const msg: ChatMessage = { ...m };
        this.answerTexts(m, msg);
        if (m.tool_calls) {
          msg.tool_calls = m.tool_calls.map((tc) => ({
            ...tc,
            id: this.maskLabel(tc.id),
            function: { ...tc.function, name: this.maskLabel(tc.function.name), arguments: this.processOutputText(tc.function.arguments, true) },
          }));
        }
        // A compatible server's own reason is passed on as it wrote it: leak-guarded like a label.
        const finish = c.finish_reason;
        if (finish !== null && !isDocumentedFinishReason(finish)) return { ...c, message: msg, finish_reason: this.maskLabel(finish) };
        return { ...c, message: msg };
      }),
      id: this.maskLabel(result.id),
      model: this.maskLabel(result.model),
    };
  }

  /**
   * An answer message's text: its content (a string, or each text and refusal part) and its
   * refusal, redacted into `msg` as one text. A caller reads them joined (/v1/messages puts them
   * all in one text block, and a client of the OpenAI route may join the parts), so a value
   * split across two of them is found in their concatenation (see redactJoined). Parts are
   * rebuilt from the members Warden redacts and nothing else (an allow-list: `annotations` or
   * any other member an upstream adds would reach the caller unread). The provider's schema
   * admits only these part types (providers/validate.ts); any other is refused here too, so no
   * provider can hand the caller a part redaction did not read.
   */
  private answerTexts(m: ChatMessage, msg: ChatMessage): void {
    const texts: string[] = [];
    const parts = Array.isArray(m.content) ? m.content : undefined;
    if (typeof m.content === 'string') texts.push(m.content);
    else if (parts) for (const p of parts) texts.push(answerPartText(p));
    if (typeof m.refusal === 'string') texts.push(m.refusal);
    if (texts.length === 0) return;
    const out = this.redactJoined(texts);
    let k = 0;
    if (typeof m.content === 'string') msg.content = out[k++]!;
    else if (parts) {
      msg.content = parts.map((p) => {
        const text = out[k++]!;
        return (p.type === 'refusal' ? { type: 'refusal', refusal: text } : { type: p.type, text }) as ContentPart;
      });
    }
    if (typeof m.refusal === 'string') msg.refusal = out[k]!;
  }

  /**
   * Answer texts a caller may join, each redacted so that their concatenation is the
   * concatenation redacted (see redactJoined); a placeholder to restore that crosses into the next
   * text moves whole into the text where it begins, as a finding does (see splitPlaceholders), so
   * that the texts joined are restored as the joined text is.
   */
  private redactJoined(texts: readonly string[]): string[] {
    if (texts.length === 1) return [this.processOutputText(texts[0]!, false)];
    return redactJoined(
      texts,
      (t) => this.outputFindings(t, 0),
      (slice, findings) => this.renderOutput(slice, findings, false),
      (joined, bounds, findings) => this.splitPlaceholders(joined, bounds, findings),
    );
  }

  /**
   * The placeholders renderOutput would restore in `joined` that cross one of the texts' `bounds`
   * (a model may split one between two content parts): restored like any other when moved whole
   * into the text where they begin. Only this request's tokens, when it may restore them, and
   * none a finding overlaps (that finding's replacement wins, as in one text).
   */
  private splitPlaceholders(joined: string, bounds: readonly number[], findings: readonly Finding[]): Array<[number, number]> {
    if (!this.plan.reidentify || this.vault.size === 0 || joined.indexOf('<') < 0) return [];
    const out: Array<[number, number]> = [];
    for (const m of joined.matchAll(PLACEHOLDER)) {
      const start = m.index;
      const end = start + m[0].length;
      if (!bounds.some((b) => start < b && b < end)) continue;
      if (this.vault.original(m[0]) === undefined) continue;
      if (findings.some((f) => f.start < end && start < f.end)) continue;
      out.push([start, end]);
    }
    return out;
  }

  /**
   * A label of the answer (its id and model, a tool call's id and function name), passed on as
   * the upstream wrote it but for a secret value in it, masked as `[SECRET_VALUE]` and counted
   * as in text. Not scanned for PII: an id pairs a call with its result and a function name
   * matches one of the app's tools (see checkFunctionName), so only what must never reach the
   * caller is rewritten. A few short strings per answer: the guard is a handful of indexOf.
   *
   * `from`: only the label from there on is wanted (a streamed tool call label whose start is out
   * already, see redact/stream.ts ToolLabel); the guard still reads all of it, and a value that
   * begins before `from` is masked from there. Only values that reach past `from` are counted.
   */
  maskLabel(label: string, from = 0): string {
    const rest = from === 0 ? label : label.slice(from);
    if (!this.answerGuard.active) return rest;
    const hits: Finding[] = [];
    const n = this.answerGuard.find(label, hits, false, undefined, true);
    if (n === 0) return rest;
    const mine: Finding[] = [];
    for (const h of resolveOverlaps(hits, label)) {
      if (h.end > from) mine.push(from === 0 ? h : { ...h, start: Math.max(h.start, from) - from, end: h.end - from });
    }
    if (mine.length === 0) return rest;
    this.leaks += from === 0 ? n : mine.length;
    return applyFindings(rest, mine, () => 'mask', this.replacer, this.responseCounts);
  }

  processStream(chunks: AsyncIterable<CompletionChunk>, sequential = false, stopSequences: readonly string[] = NO_STOPS): AsyncIterable<CompletionChunk> {
    return processChunkStream(chunks, this, sequential, stopSequences);
  }

  report(): RedactionReport {
    return {
      counts: { ...this.counts },
      responseCounts: { ...this.responseCounts },
      nonTextParts: this.nonTextParts,
      leaks: this.leaks,
      detectorFailures: this.failures,
    };
  }

  /** Detectors that failed while the decision allowed failing open (0 otherwise). */
  get detectorFailures(): number {
    return this.failures;
  }
}

/**
 * Texts read joined (a message's parts), each redacted so that their concatenation is the
 * concatenation redacted. Found (`scan`) in the joined text and in each text alone (joining can
 * also hide a value: a phone number the next text goes on with digits), findings kept as
 * resolveOverlaps keeps them. A finding that crosses from one text into the next is replaced
 * (`render`) in the text where it begins, and the next text begins after it (a value over a
 * whole text leaves that one empty); so is a span `kept` says must stay whole (an answer's
 * placeholder to restore). Scanned findings are not changed: they may be the findings cache's,
 * shared across requests.
 */
function redactJoined(
  texts: readonly string[],
  scan: (text: string) => readonly Finding[],
  render: (slice: string, findings: Finding[]) => string,
  kept: (joined: string, bounds: readonly number[], findings: readonly Finding[]) => ReadonlyArray<readonly [number, number]> = () => [],
): string[] {
  const joined = texts.join('');
  if (joined.length === 0) return texts.slice();
  const bounds = [0];
  for (const t of texts) bounds.push(bounds[bounds.length - 1]! + t.length);
  let findings: Finding[] = scan(joined).slice();
  const alone: Finding[] = [];
  texts.forEach((t, k) => {
    if (t.length === 0) return;
    for (const f of scan(t)) alone.push({ ...f, start: f.start + bounds[k]!, end: f.end + bounds[k]! });
  });
  if (alone.length > 0) findings = resolveOverlaps(findings.concat(alone), joined);
  // Where each text's output begins: after a finding, or a span `kept` whole, that crosses into it.
  const cuts = bounds.slice();
  const crossing = (start: number, end: number): void => {
    for (let k = 1; k < texts.length; k++) if (start < bounds[k]! && bounds[k]! < end) cuts[k] = Math.max(cuts[k]!, end);
  };
  for (const f of findings) crossing(f.start, f.end);
  for (const [start, end] of kept(joined, bounds, findings)) crossing(start, end);
  return texts.map((_, k) => {
    const from = cuts[k]!;
    const to = Math.max(from, cuts[k + 1]!);
    if (from === to) return '';
    const mine = findings.filter((f) => f.start >= from && f.end <= to).map((f) => ({ ...f, start: f.start - from, end: f.end - from }));
    return render(joined.slice(from, to), mine);
  });
}

/** The text of a prompt part the model reads as text (a text-like part's `text`, a refusal part's `refusal`), else undefined. */
function promptPartText(p: ContentPart): string | undefined {
  const rec = p as Record<string, unknown>;
  if (TEXT_PART_TYPES.has(p.type) && typeof rec['text'] === 'string') return rec['text'];
  if (p.type === 'refusal' && typeof rec['refusal'] === 'string') return rec['refusal'];
  return undefined;
}

/** `p` with its text (promptPartText) replaced, its other members as they were. */
function withPartText(p: ContentPart, text: string): ContentPart {
  return (p.type === 'refusal' ? { ...p, refusal: text } : { ...p, text }) as ContentPart;
}

function pushDefined<T>(list: T[], v: T | undefined): void {
  if (v !== undefined) list.push(v);
}

/**
 * `findings` (sorted, not overlapping) without what lies inside `spans` (sorted, not overlapping):
 * a finding inside a span is dropped, one that crosses a span's edge keeps only its parts outside
 * (the caller's `bob` before a secret `@corp.example.com…` is still masked, the secret is not).
 * New objects for clipped findings: cached findings are shared across requests.
 */
function outsideSpans(findings: readonly Finding[], spans: ReadonlyArray<readonly [number, number]>): Finding[] {
  const out: Finding[] = [];
  for (const f of findings) {
    let start = f.start;
    for (const [s, e] of spans) {
      if (e <= start) continue;
      if (s >= f.end) break;
      if (s > start) out.push(start === f.start && s === f.end ? f : { ...f, start, end: s });
      start = e;
      if (start >= f.end) break;
    }
    if (start < f.end) out.push(start === f.start ? f : { ...f, start });
  }
  return out;
}

/**
 * The function names among the pass-through parameters: `tool_choice.function.name` (OpenAI;
 * Anthropic's `tool_choice.name` arrives translated to it), legacy `function_call.name` and
 * `functions[].name`. See Session.checkFunctionName. The legacy two are refused at every ingress
 * (server/answer-params.ts) and never reach here from HTTP or gRPC; they are still read, so that a
 * redactor embedded without that check does not let a name with PII through.
 */
function functionNamesInParams(params: Readonly<Record<string, unknown>>): unknown[] {
  const names: unknown[] = [];
  const member = (v: unknown, key: string): unknown => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined);
  names.push(member(member(params['tool_choice'], 'function'), 'name'), member(params['function_call'], 'name'));
  const functions = params['functions'];
  if (Array.isArray(functions)) for (const f of functions) names.push(member(f, 'name'));
  return names;
}

const NO_STOPS: readonly string[] = [];

/** The text of an answer's content part: a text part's `text`, a refusal part's `refusal`. */
function answerPartText(p: ContentPart): string {
  const rec = p as Record<string, unknown>;
  const text = rec['text'];
  if (TEXT_PART_TYPES.has(p.type) && typeof text === 'string') return text;
  const refusal = rec['refusal'];
  if (p.type === 'refusal' && typeof refusal === 'string') return refusal;
  throw new WardenError('upstream_error', 'the answer holds a content part of a type other than text, input_text, output_text or refusal');
}

/**
 * Credential shapes a signed or keyed image URL carries on purpose: they are how the URL lets the
 * provider's fetcher read a private image (an S3 or GCS presigned URL's `X-Amz-Credential` key id
 * and `X-*-Signature`, read as PASSWORD by their parameter names; a `key=AIza…` of Google's image
 * APIs; a signed CDN URL's JWT `token=`). Refusing them would refuse every private image, so
 * they are not `pii_in_image_url`; under a decision or profile that blocks them (`strict`) the
 * request is still refused, and a secret Warden resolved for the request is refused wherever it
 * is (the leak guard below). Other credential shapes (a password in `user:password@host`, an
 * API key of a model provider, a private key) have no place in an image URL and still refuse it.
 */
const URL_GRANTS: ReadonlySet<string> = new Set(['PASSWORD', 'AWS_ACCESS_KEY_ID', 'GOOGLE_API_KEY', 'JWT']);

const DATA_URL = /^data:/i;
const QUERY_SEPARATORS = /[?&#]/g;
const BASE64_HEADER = /;base64$/i;

/**
 * What redaction reads of an image URL: all of it, but a `data:` URL's base64 payload (the
 * image's bytes): its media type and parameters only (`data:image/png;name=…;base64`).
 */
function imageUrlText(url: string): string {
  if (!DATA_URL.test(url)) return url;
  const comma = url.indexOf(',');
  if (comma < 0) return url;
  const header = url.slice(0, comma);
  return BASE64_HEADER.test(header) ? header : url;
}

/** `text` with its `%XX` escapes decoded byte by byte (a malformed one stays as written). */
function percentDecoded(text: string): string {
  return text.replace(PERCENT_ESCAPE, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
}

const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/g;

/**
 * `findings` with every edge that falls strictly inside one of `view`'s escapes moved out to that
 * escape's edge (a start to its start, an end to its end): the same array when none does.
 */
function overEscapes(findings: Finding[], view: FoldedText, keep?: FoldedText): Finding[] {
  let out: Finding[] | undefined;
  for (let i = 0; i < findings.length; i++) {
    const f = findings[i]!;
    const start = deeperEscapeAround(view, f.start, false, keep);
    const end = deeperEscapeAround(view, f.end, true, keep);
    if (start === f.start && end === f.end) continue;
    out ??= findings.slice();
    out[i] = { ...f, start, end };
  }
  return out ?? findings;
}

/**
 * escapeAround, except where `at` is inside an escape that `keep` (the first reading) reads as
 * one unit too: there `at` is kept (an argument's own escapes are kept valid by applyJsonFindings,
 * as when there is one level only; widening depended on a deeper escape anywhere in the text, so
 * the whole answer and the streamed one differed).
 */
function deeperEscapeAround(view: FoldedText, at: number, toEnd: boolean, keep: FoldedText | undefined): number {
  const k = unitAround(view, at);
  if (k < 0) return at;
  const start = view.starts![k]!;
  const end = view.ends![k]!;
  if (keep !== undefined) {
    const j = unitAround(keep, at);
    if (j >= 0 && keep.starts![j] === start && keep.ends![j] === end) return at;
  }
  return toEnd ? end : start;
}

/** `at`, or the start (`toEnd`: the end) of the unit of `view` whose original span holds `at` strictly inside. */
function escapeAround(view: FoldedText, at: number, toEnd: boolean): number {
  const k = unitAround(view, at);
  if (k < 0) return at;
  return toEnd ? view.ends![k]! : view.starts![k]!;
}

/** The offset in `view` (a decoded text) of the first unit that begins at or after `at` in the original. */
function decodedOffset(view: FoldedText, at: number): number {
  const starts = view.starts;
  if (starts === null) return at;
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid]! < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

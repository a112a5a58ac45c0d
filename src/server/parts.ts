/**
 * Members of the content part types OpenAI documents. Redaction reads a part's text where it
 * knows to look (a text part's `text`, a file's `filename`) and passes the rest on untouched, so
 * a member it does not know (a `text` on an image part, an `input_audio.transcript`, a free-form
 * `image_url.detail`) would carry any text past it. Known part types are therefore held to their
 * documented members, and a type Warden does not know is refused: redaction would not read it, so
 * its text would reach the provider in clear (deny by default).
 */
import { WardenError } from '../pipeline/errors.js';
import { MEMBER_NAME, UNNAMED_MEMBER } from '../pipeline/identifiers.js';

/**
 * A string member: any string, one of a list, or an opaque payload redaction does not read, held
 * to its shape so that no text rides in it (OPAQUE).
 */
type Member = 'string' | readonly string[] | Opaque;

interface Opaque {
  test: RegExp;
  expected: string;
}

const BASE64_TEXT = '[A-Za-z0-9+/]*={0,2}';
/**
 * The payloads of audio and file parts are bytes Warden cannot read (README: non-text parts pass
 * untouched); as text (`"data": "my SSN is …"`) they would reach the provider in clear, past
 * redaction. So the audio clip is base64, a file's data base64 or a base64 `data:` URL with a bare
 * media type (a parameter is text: `;name=jane@…`), and a file id an id. An image URL is read by
 * redaction instead (redact/session.ts checkImageUrl).
 */
const OPAQUE = {
  base64: { test: new RegExp(`^${BASE64_TEXT}$`), expected: 'base64' },
  fileData: { test: new RegExp(`^(?:data:[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+;base64,)?${BASE64_TEXT}$`), expected: 'base64, or a data: URL of base64 (data:<type>/<subtype>;base64,…)' },
  fileId: { test: /^[A-Za-z0-9_-]{1,256}$/, expected: 'a file id (letters, digits, - and _)' },
} satisfies Record<string, Opaque>;

/** An object member and its own members. */
interface ObjectMember {
  object: Record<string, Member>;
  required: readonly string[];
}

interface PartShape {
  /** Members besides `type`; `required` ones must be present. */
  members: Record<string, Member | ObjectMember>;
  required: readonly string[];
}

const TEXT: PartShape = { members: { text: 'string' }, required: [] };

const PART_SHAPES: Record<string, PartShape> = {
  text: TEXT,
  input_text: TEXT,
  output_text: TEXT,
  refusal: { members: { refusal: 'string' }, required: ['refusal'] },
  image_url: { members: { image_url: { object: { url: 'string', detail: ['auto', 'low', 'high'] }, required: ['url'] } }, required: ['image_url'] },
  input_audio: { members: { input_audio: { object: { data: OPAQUE.base64, format: ['wav', 'mp3'] }, required: ['data', 'format'] } }, required: ['input_audio'] },
  file: { members: { file: { object: { file_data: OPAQUE.fileData, file_id: OPAQUE.fileId, filename: 'string' }, required: [] } }, required: ['file'] },
};

/** The part types ingress accepts, in the order error messages list them. */
export const PART_TYPES: readonly string[] = Object.keys(PART_SHAPES);

function invalid(message: string, path: string): WardenError {
  return new WardenError('invalid_request', message, { location: { path } });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Values are never quoted back: a refused member may hold exactly what redaction is for. */
function checkValue(v: unknown, shape: Member, path: string): void {
  if (typeof v !== 'string') throw invalid(`field '${path}' must be a string`, path);
  if (shape === 'string') return;
  if (isOpaque(shape)) {
    if (!shape.test.test(v)) throw invalid(`field '${path}' must be ${shape.expected}: Warden does not read it, so it may not carry text`, path);
    return;
  }
  if (!shape.includes(v)) throw invalid(`field '${path}' must be one of ${shape.join(', ')}`, path);
}

function isOpaque(shape: Member): shape is Opaque {
  return typeof shape === 'object' && !Array.isArray(shape);
}

function checkMembers(obj: Record<string, unknown>, members: Record<string, unknown>, required: readonly string[], path: string, what: string): void {
  for (const key of Object.keys(obj)) {
    if (Object.hasOwn(members, key)) continue;
    // A key is the caller's text: named only when it looks like a parameter name.
    if (MEMBER_NAME.test(key)) throw invalid(`field '${path}.${key}' is not a member of ${what}`, `${path}.${key}`);
    throw invalid(`field '${path}' has ${UNNAMED_MEMBER}, which is not a member of ${what}`, path);
  }
  for (const key of required) {
    if (obj[key] === undefined) throw invalid(`field '${path}.${key}' is required in ${what}`, `${path}.${key}`);
  }
}

/**
 * Refuses a part type Warden does not know, with `invalid_request` at `path` (the `type` field)
 * listing the known ones. The type is not quoted: it is the caller's text like any other.
 */
export function checkPartType(type: unknown, path: string): asserts type is string {
  if (typeof type === 'string' && Object.hasOwn(PART_SHAPES, type)) return;
  throw invalid(`field '${path}' is not a content part type Warden accepts (accepted: ${PART_TYPES.join(', ')})`, path);
}

/**
 * Refuses a part of a type Warden does not know (see checkPartType), and a member of a known part
 * type that OpenAI does not document, with `invalid_request` naming it (`<base>.image_url.detail`)
 * when its name is identifier-shaped, else at the object that holds it. `base` is the part's own path.
 */
export function checkContentPart(part: Record<string, unknown>, base: string): void {
  const type = part['type'];
  checkPartType(type, `${base}.type`);
  const shape = PART_SHAPES[type]!;
  const what = `a ${type} part`;
  const prefix = (k: string): string => `${base}.${k}`;
  checkMembers(part, { ...shape.members, type: 'string' }, shape.required, base, what);
  for (const [key, member] of Object.entries(shape.members)) {
    const v = part[key];
    if (v === undefined) continue;
    if (typeof member === 'string' || Array.isArray(member) || !('object' in member)) {
      checkValue(v, member as Member, prefix(key));
      continue;
    }
    const nested = member as ObjectMember;
    if (!isObject(v)) throw invalid(`field '${prefix(key)}' must be an object`, prefix(key));
    checkMembers(v, nested.object, nested.required, prefix(key), `${what}'s ${key}`);
    for (const [k, m] of Object.entries(nested.object)) if (v[k] !== undefined) checkValue(v[k], m, `${prefix(key)}.${k}`);
  }
}

import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import { bytesNestDeeperThan, checkJsonDepth, jsonScanError, scanJson, scanJsonText, textNestsDeeperThan, tooDeepAt } from '../../src/pipeline/json-depth.js';

/** `{"a":{"a":…1…}}` with `levels` objects, built as text and parsed as a body would be. */
function nestedObjects(levels: number, key = 'a'): unknown {
  return JSON.parse(`${`{"${key}":`.repeat(levels)}1${'}'.repeat(levels)}`);
}

function refusal(value: unknown, max: number, root?: string): WardenError {
  try {
    checkJsonDepth(value, max, root);
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    return err as WardenError;
  }
  throw new Error('expected a refusal');
}

describe('tooDeepAt', () => {
  it('counts the value itself as level 1, objects and arrays alike; scalars have no depth', () => {
    expect(tooDeepAt(nestedObjects(3), 3)).toBeUndefined();
    expect(tooDeepAt(nestedObjects(4), 3)).toEqual(['a', 'a', 'a']);
    expect(tooDeepAt([[[1]]], 3)).toBeUndefined();
    expect(tooDeepAt([[[[1]]]], 3)).toEqual([0, 0, 0]);
    expect(tooDeepAt('x'.repeat(10), 1)).toBeUndefined();
    expect(tooDeepAt(null, 1)).toBeUndefined();
    expect(tooDeepAt({}, 1)).toBeUndefined();
    expect(tooDeepAt({ a: {} }, 1)).toEqual(['a']);
  });

  it('finds the first too-deep branch among shallow siblings', () => {
    const body = { model: 'm', tools: [{ ok: { x: 1 } }, { function: { parameters: nestedObjects(5, 'p') } }] };
    // body 1, tools 2, tool 3, function 4, parameters 5, then p, p, …
    expect(tooDeepAt(body, 6)).toEqual(['tools', 1, 'function', 'parameters', 'p', 'p']);
    expect(tooDeepAt(body, 9)).toBeUndefined();
  });

  it('stops at the limit on a body far deeper than the stack could walk', () => {
    const deep = nestedObjects(200_000);
    const path = tooDeepAt(deep, 64);
    expect(path).toHaveLength(64);
    const arrays = JSON.parse(`${'['.repeat(500_000)}${']'.repeat(500_000)}`) as unknown;
    expect(tooDeepAt(arrays, 1000)).toHaveLength(1000);
  });
});

describe('checkJsonDepth', () => {
  it('passes a body within the limit', () => {
    expect(() => checkJsonDepth(nestedObjects(64), 64)).not.toThrow();
  });

  it('refuses with invalid_request, naming the field the value sits in and the config key', () => {
    const err = refusal({ tools: [{ function: { parameters: nestedObjects(100) } }] }, 64);
    expect(err.code).toBe('invalid_request');
    // At most six segments of the path are shown: enough to find the field.
    expect(err.location?.path).toBe('tools.0.function.parameters.a.a');
    expect(err.message).toBe("field 'tools.0.function.parameters.a.a' is nested deeper than 64 levels (limits.max_json_depth)");
  });

  it('prefixes the root (a gRPC JSON field)', () => {
    const err = refusal(nestedObjects(10, 'seed'), 4, 'params_json');
    expect(err.location?.path).toBe('params_json.seed.seed.seed.seed');
  });

  it('never shows a member name that is not a plain identifier: it is the caller’s data', () => {
    const canary = 'jane.CANARY@example.com';
    const err = refusal({ metadata: { [canary]: nestedObjects(10) } }, 4);
    expect(err.location?.path).toBe('metadata');
    expect(err.message).not.toContain('CANARY');
    const top = refusal({ [canary]: nestedObjects(10) }, 4);
    expect(top.location?.path).toBe('$');
    expect(top.message).toBe('request body is nested deeper than 4 levels (limits.max_json_depth)');
    expect(JSON.stringify(top)).not.toContain('CANARY');
  });
});

describe('bytesNestDeeperThan', () => {
  const deeper = (text: string, max: number) => bytesNestDeeperThan(Buffer.from(text), max);
  it('counts brackets outside strings as JSON.parse nests them, and agrees with tooDeepAt on valid JSON', () => {
    const cases = ['{}', '[[1]]', '{"a":[{"b":[]}]}', '["[[[", "\\"[[", "\\\\", "[", {"k[": [1]}]', '"[[[["', '[{"é[":"ü{"}]'];
    for (const text of cases) {
      for (const max of [1, 2, 3, 4]) expect(deeper(text, max), `${text} ${max}`).toBe(tooDeepAt(JSON.parse(text), max) !== undefined);
    }
  });
  it('reads an escaped backslash before a quote as the string ending, an escaped quote as not', () => {
    // "\\" ends its string, so the [ after it opens a level; "\"[" stays inside.
    expect(deeper('["\\\\", [[1]]]', 2)).toBe(true);
    expect(deeper('["\\"[[[", 1]', 1)).toBe(false);
  });
});

describe('textNestsDeeperThan', () => {
  it('reads a decoded text as bytesNestDeeperThan reads its UTF-8, characters outside ASCII included', () => {
    const cases = ['[[1]]', '["é[[", "\\"]', '[{"ü{":"😀["}]', '["\\", [[1]]]'];
    for (const text of cases) {
      for (const max of [1, 2, 3]) expect(textNestsDeeperThan(text, max), `${text} ${max}`).toBe(bytesNestDeeperThan(Buffer.from(text), max));
    }
  });
});

describe('scanJson', () => {
  const bytes = (text: string) => Buffer.from(text, 'utf8');

  it('counts arrays, objects and the commas between entries, outside strings', () => {
    // [[],[],[]]: 4 containers and 2 commas.
    expect(scanJson(bytes('[[],[],[]]'), 64, 6)).toBeUndefined();
    expect(scanJson(bytes('[[],[],[]]'), 64, 5)).toBe('values');
    // An array of n numbers counts n.
    expect(scanJson(bytes(`[${Array(100).fill(0).join(',')}]`), 64, 100)).toBeUndefined();
    expect(scanJson(bytes(`[${Array(101).fill(0).join(',')}]`), 64, 100)).toBe('values');
    // {"a":0,"a":0,...}: the object and its commas.
    expect(scanJson(bytes(`{${Array(50).fill('"a":0').join(',')}}`), 64, 50)).toBeUndefined();
    expect(scanJson(bytes(`{${Array(51).fill('"a":0').join(',')}}`), 64, 50)).toBe('values');
  });

  it('does not count commas and brackets inside strings (a long prompt of prose or CSV passes)', () => {
    const csv = Array.from({ length: 50_000 }, (_, i) => i).join(',');
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `[{${csv}}]`, name: 'a,b' }] });
    expect(scanJson(bytes(body), 64, 100)).toBeUndefined();
    // Escaped quotes and backslashes do not end a string early.
    expect(scanJson(bytes(JSON.stringify({ a: 'x\\",[,[,[,\\"', b: [1, 2] })), 2, 4)).toBeUndefined();
  });

  it('finds depth as bytesNestDeeperThan does, and says which bound a text passed first', () => {
    expect(scanJson(bytes('[[[1]]]'), 3, 100)).toBeUndefined();
    expect(scanJson(bytes('[[[[1]]]]'), 3, 100)).toBe('depth');
    expect(bytesNestDeeperThan(bytes('[[[[1]]]]'), 3)).toBe(true);
    expect(scanJson(bytes('[0,0,0,[[[[1]]]]]'), 3, 2)).toBe('values');
    // Text that is not JSON is read all the same (JSON.parse refuses it after).
    expect(scanJson(bytes('[],[],[],"'), 64, 100)).toBeUndefined();
  });

  it('agrees on a decoded text with characters outside ASCII', () => {
    // Three arrays and two commas: the comma in the string does not count.
    expect(scanJsonText('["é,😀",[],[]]', 64, 5)).toBeUndefined();
    expect(scanJsonText('["é,😀",[],[]]', 64, 4)).toBe('values');
  });

  it('refuses with invalid_request, naming the text and the config key, never the text', () => {
    const err = jsonScanError('values', "field 'params_json'", 'params_json', 64, 65536);
    expect(err).toMatchObject({ code: 'invalid_request', location: { path: 'params_json' } });
    expect(err.message).toBe("field 'params_json' holds more than 65536 JSON values (arrays, objects and the entries between commas; limits.max_json_values)");
    expect(jsonScanError('depth', 'request body', '$', 64, 65536).message).toBe('request body is nested deeper than 64 levels (limits.max_json_depth)');
  });
});

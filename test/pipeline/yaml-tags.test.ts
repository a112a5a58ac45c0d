/**
 * YAML tags (pipeline/yaml-tags.ts): a tag Warden does not implement (`!vault`, `!include`,
 * `!Ref`, YAML 1.1's `!!binary`) must refuse the document, not be dropped so that the value reads
 * as a plain string; the YAML 1.2 core tags keep working.
 */
import { LineCounter, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseYamlValue, YAML_TAG_OPTIONS, YamlTagError, yamlTagProblems } from '../../src/pipeline/yaml-tags.js';

/** Each problem as `line:col: message`. */
function problemsOf(text: string): string[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...YAML_TAG_OPTIONS, lineCounter });
  expect(doc.errors).toEqual([]);
  return yamlTagProblems(doc).map((p) => {
    const { line, col } = lineCounter.linePos(p.offset);
    return `${line}:${col}: ${p.message}`;
  });
}

describe('yamlTagProblems', () => {
  it('names every tag Warden does not implement, where it is written', () => {
    expect(problemsOf('api_key: !vault secret/x\nblob: !!binary aGVsbG8=\nmore: !include other.yaml\narn: !Ref Bucket\n')).toEqual([
      '1:10: unknown YAML tag !vault',
      '2:7: unknown YAML tag !!binary',
      '3:7: unknown YAML tag !include',
      '4:6: unknown YAML tag !Ref',
    ]);
    // On a collection, a key, the document itself; YAML 1.1 types; a global tag, written out or by handle.
    expect(problemsOf('a: !vault\n  b: 1\n')).toEqual(['1:4: unknown YAML tag !vault']);
    expect(problemsOf('!secret k: v\n')).toEqual(['1:1: unknown YAML tag !secret']);
    expect(problemsOf('--- !config\na: 1\n')).toEqual(['1:5: unknown YAML tag !config']);
    expect(problemsOf('s: !!set { a }\nt: !!timestamp 2020-01-01\no: !!omap [ { a: 1 } ]\np: !!pairs [ { a: 1 } ]\nm: !!merge x\n')).toEqual([
      '1:4: unknown YAML tag !!set',
      '2:4: unknown YAML tag !!timestamp',
      '3:4: unknown YAML tag !!omap',
      '4:4: unknown YAML tag !!pairs',
      '5:4: unknown YAML tag !!merge',
    ]);
    // A global tag is not an identifier: it is described, not repeated.
    expect(problemsOf('a: !<tag:example.com,2000:x> y\n')).toEqual(['1:4: unknown YAML tag (tag not shown: not an identifier)']);
    expect(problemsOf('%TAG !e! tag:example.com,2000:\n---\na: !e!widget y\n')).toEqual(['3:4: unknown YAML tag (tag not shown: not an identifier)']);
  });

  it('keeps the YAML 1.2 core tags and the non-specific tag, but not a core tag its value does not fit', () => {
    expect(problemsOf('a: !!str 5\nb: !!int "7"\nc: !!map { x: 1 }\nd: !!seq [1]\ne: !!float 1.5\nf: !!bool true\ng: !!null ""\nh: ! 12\n')).toEqual([]);
    expect(problemsOf('a: !!float 1\nb: !!map [1]\n')).toEqual(['1:4: YAML tag !!float does not fit its value', '2:4: YAML tag !!map does not fit its value']);
  });

  it('refuses a %YAML 1.1 document (the library resolves its types there without a tag or a word)', () => {
    const directive = '1:1: %YAML 1.1 is not supported: Warden reads YAML 1.2 (remove the directive)';
    expect(problemsOf('%YAML 1.1\n---\na: !!binary aGVsbG8=\nb: !vault x\n')).toEqual([directive, '4:4: unknown YAML tag !vault']);
    // A plain date would become a Date object, `yes` a boolean, `010` the number 8.
    expect(problemsOf('%YAML 1.1\n---\nd: 2001-12-14\ne: yes\nf: 010\n')).toEqual([directive]);
    expect(() => parseYamlValue('%YAML 1.1\n---\nd: 2001-12-14\n')).toThrow(YamlTagError);
    expect(problemsOf('%YAML 1.2\n---\nd: 2001-12-14\n')).toEqual([]);
  });

  it('never repeats the value it tags, nor a tag that is not a short identifier (it may be a pasted credential)', () => {
    expect(problemsOf(`a: !${'x'.repeat(500)} CANARY-SECRET-1\n`)).toEqual(['1:4: unknown YAML tag (tag not shown: 500 characters, longer than a name)']);
    expect(problemsOf('a: !AKIAIOSFODNN7EXAMPLE x\n')).toEqual(['1:4: unknown YAML tag (tag not shown: it looks like a literal secret (AWS access key id))']);
    expect(problemsOf('a: !!AKIAIOSFODNN7EXAMPLE x\n')).toEqual(['1:4: unknown YAML tag (tag not shown: it looks like a literal secret (AWS access key id))']);
    expect(problemsOf('a: !sk-proj-abcdefghijklmnopqrstuvwx x\n')).toEqual(['1:4: unknown YAML tag (tag not shown: it looks like a literal secret (OpenAI/Anthropic-style API key))']);
    expect(problemsOf('a: !hunter2%21secret x\n')).toEqual(['1:4: unknown YAML tag (tag not shown: not an identifier)']);
    expect(problemsOf('a: !<AKIAIOSFODNN7EXAMPLE> x\n')).toEqual(['1:4: unknown YAML tag (tag not shown: it looks like a literal secret (AWS access key id))']);
  });
});

describe('parseYamlValue', () => {
  it('reads what yaml.parse reads, and throws a located YamlTagError for an unknown tag', () => {
    expect(parseYamlValue('a: [1, !!str 2]\n')).toEqual({ a: [1, '2'] });
    let err: unknown;
    try {
      parseYamlValue('x: 1\ntoken: !vault CANARY-SECRET-2\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(YamlTagError);
    expect(err).toMatchObject({ message: 'unknown YAML tag !vault', line: 2, col: 8 });
    expect(String((err as Error).message)).not.toContain('CANARY');
    // A syntax error stays the yaml library's (with its position).
    expect(() => parseYamlValue('a: [1\n')).toThrow(expect.objectContaining({ linePos: expect.any(Array) }));
  });
});

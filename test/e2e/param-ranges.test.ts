/**
 * OpenAI's documented parameter ranges, held at ingress: a value out of range (`temperature: 7`,
 * `n: 0`, a `logit_bias` of 101) is refused with `invalid_request` naming the parameter and the
 * range, over HTTP (the official `openai` client) and gRPC alike, before the policy or the
 * upstream sees it; the edges of each range, and what has no bound (`seed`), go upstream unchanged.
 */
import * as grpc from '@grpc/grpc-js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';

let g: GatewayWarden;

beforeAll(async () => {
  g = await startGatewayWarden();
});

afterAll(async () => {
  await g?.close();
});

const WARDEN = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-7', customer_message: 'hello' } };

function client(): OpenAI {
  return new OpenAI({ apiKey: g.token, baseURL: `${g.w.addresses.http}/v1`, maxRetries: 0 });
}

/** [parameter, value, the range the error states]; each is refused on its own. */
const OUT_OF_RANGE: Array<[string, unknown, string]> = [
  ['temperature', 7, 'a number from 0 to 2'],
  ['temperature', -0.1, 'a number from 0 to 2'],
  ['temperature', 'hot', 'a number from 0 to 2'],
  ['top_p', -1, 'a number from 0 to 1'],
  ['top_p', 1.01, 'a number from 0 to 1'],
  ['presence_penalty', 9, 'a number from -2 to 2'],
  ['frequency_penalty', -2.5, 'a number from -2 to 2'],
  ['n', 0, 'an integer from 1 to 128'],
  ['n', 129, 'an integer from 1 to 128'],
  ['n', 1.5, 'an integer from 1 to 128'],
  ['seed', 1.5, 'an integer'],
  ['seed', '7', 'an integer'],
  ['logit_bias', { '50256': 101 }, 'an object mapping token ids to numbers from -100 to 100'],
  ['logit_bias', { '1': 0, '2': -100.5 }, 'an object mapping token ids to numbers from -100 to 100'],
  ['logit_bias', { '1': '5' }, 'an object mapping token ids to numbers from -100 to 100'],
  ['logit_bias', [5], 'an object mapping token ids to numbers from -100 to 100'],
  ['max_tokens', -5, 'a positive integer'],
  ['max_tokens', 0, 'a positive integer'],
  ['max_completion_tokens', 2.5, 'a positive integer'],
];

/** The edges of each range, and values without a bound: all accepted. */
const IN_RANGE: Record<string, unknown> = {
  temperature: 2,
  top_p: 0,
  presence_penalty: -2,
  frequency_penalty: 2,
  n: 128,
  seed: -9007199254740991,
  logit_bias: { '50256': -100, '1': 100, '2': 0.5 },
  max_completion_tokens: 1,
};

describe('HTTP (/v1/chat/completions)', () => {
  it('a value out of its documented range is refused, naming the parameter and the range; nothing goes upstream', async () => {
    const before = g.upstream.calls.length;
    for (const [param, value, range] of OUT_OF_RANGE) {
      const err = await client()
        .chat.completions.create({ model: 'gpt-4o-mini', messages: [], [param]: value, warden: WARDEN } as any)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, param).toBeInstanceOf(OpenAI.BadRequestError);
      const e = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect(e.code, `${param}: ${e.message}`).toBe('invalid_request');
      expect(e.param, param).toBe(param);
      expect((e.error as { message: string }).message).toBe(`field '${param}' must be ${range}`);
    }
    expect(g.upstream.calls.length).toBe(before);
  });

  it('the edges of each range, values without a bound and null are accepted and go upstream as sent', async () => {
    await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [], ...IN_RANGE, warden: WARDEN } as any);
    const sent = g.upstream.calls.at(-1)!.body;
    for (const [k, v] of Object.entries(IN_RANGE)) expect(sent[k], k).toEqual(v);

    await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [], temperature: null, top_p: 1, n: 1, seed: 0, logit_bias: {}, warden: WARDEN } as any);
    const again = g.upstream.calls.at(-1)!.body;
    expect([again.temperature, again.top_p, again.n, again.seed, again.logit_bias]).toEqual([null, 1, 1, 0, {}]);
  });
});

describe('gRPC', () => {
  function complete(request: object): Promise<unknown> {
    return unaryCall(g.gateway, 'Complete', { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: WARDEN.variables, ...request }, bearerMetadata(g.token));
  }

  async function refusal(request: object): Promise<grpc.ServiceError> {
    const err = await complete(request).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err).toBeDefined();
    return err!;
  }

  it('the same table holds params_json, and the message fields temperature and top_p, named as they were sent', async () => {
    const before = g.upstream.calls.length;
    for (const [param, value, range] of OUT_OF_RANGE) {
      const err = await refusal({ params_json: JSON.stringify({ [param]: value }) });
      expect(err.code, param).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-code')[0], param).toBe('invalid_request');
      expect(err.metadata.get('warden-param')[0], param).toBe(`params_json.${param}`);
      expect(err.details, param).toBe(`field 'params_json.${param}' must be ${range}`);
    }
    for (const [field, value, range] of [
      ['temperature', 2.5, 'a number from 0 to 2'],
      ['top_p', -0.5, 'a number from 0 to 1'],
    ] as const) {
      const err = await refusal({ [field]: value });
      expect(err.code, field).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-param')[0], field).toBe(field);
      expect(err.details, field).toBe(`field '${field}' must be ${range}`);
    }
    expect(g.upstream.calls.length).toBe(before);
  });

  it('the edges of each range are accepted and go upstream as sent', async () => {
    // temperature and top_p in their own fields (given in params_json too, they would be given twice).
    const { temperature, top_p, ...rest } = IN_RANGE;
    await complete({ temperature, top_p, params_json: JSON.stringify(rest) });
    const sent = g.upstream.calls.at(-1)!.body;
    for (const [k, v] of Object.entries(IN_RANGE)) expect(sent[k], k).toEqual(v);
  });
});

// What the nats sink (bridges) and the nats source (delivery nodes) share: how they describe
// and open a connection to NATS.
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { secretSchema } from '../util/secret.js';
import type { JsonSchema } from '../util/json-schema.js';

export interface NatsAuth {
  token?: string;
  user?: string;
  password?: string;
}

export const NATS_SERVERS_SCHEMA: JsonSchema = {
  type: 'array',
  minItems: 1,
  items: { type: 'string', pattern: '^(nats|tls)://[^\\s/]+$' },
  description: 'NATS servers, e.g. nats://127.0.0.1:4222 (several: a cluster).',
};

export const NATS_AUTH_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'NATS credentials: a token, or a user and password.',
  properties: {
    token: secretSchema('NATS token.'),
    user: { type: 'string', minLength: 1 },
    password: secretSchema('NATS password.'),
  },
};

export const NATS_PREFIX_SCHEMA: JsonSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
  default: 'crm',
  description: 'Subjects are <subjectPrefix>.<server>.<type>.<partition>.',
};

export const NATS_PARTITIONS_SCHEMA: JsonSchema = {
  type: 'integer',
  minimum: 1,
  maximum: 1024,
  default: 16,
  description: 'Partitions (last subject token) a call or agent hashes to: the same number on every bridge and delivery node of a stream.',
};

/**
 * Connects, trying from the first attempt on and forever after (a bridge keeps events in its
 * outbox meanwhile; a delivery node simply waits). Resolves once connected.
 */
export function natsConnect(servers: string[], name: string, auth: NatsAuth | undefined): Promise<NatsConnection> {
  return connect({
    servers,
    name,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    ...(auth?.token ? { token: auth.token } : {}),
    ...(auth?.user ? { user: auth.user, pass: auth.password ?? '' } : {}),
  });
}

// The `pbx.ari` config section: its TypeScript shape and its part of the config's JSON Schema.
import { reconnectSchema, type BackoffPolicy } from '../../util/backoff.js';
import type { JsonSchema } from '../../util/json-schema.js';
import { secretSchema } from '../../util/secret.js';

export interface AriConfig {
  url: string;
  username: string;
  password: string;
  app: string;
  reconnect: BackoffPolicy;
  actionTimeoutMs: number;
  resync: boolean;
}

export const ariConfigSchema: JsonSchema = {
  type: 'object',
  description:
    "Asterisk REST Interface (http.conf, ari.conf; needs `channelvars = CHANNEL(linkedid)` in ari.conf [general]). Alone: the event source where AMI is not allowed (no queue events: see README). With ami: only reads channel variables on demand; events still come from AMI, once.",
  additionalProperties: false,
  required: ['username', 'password'],
  properties: {
    url: { type: 'string', pattern: '^https?://[^\\s/]+/?$', default: 'http://127.0.0.1:8088', description: "Asterisk's HTTP server (http.conf bindaddr:bindport)." },
    username: { type: 'string', minLength: 1, description: 'ARI user ([section] name in ari.conf, type = user; read_only = yes is enough).' },
    password: secretSchema('ARI password (`password =` in ari.conf).'),
    app: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', default: 'crm-bridge', description: 'Stasis application name, unique per bridge (subscribed to every channel).' },
    reconnect: reconnectSchema,
    actionTimeoutMs: { type: 'integer', minimum: 1, default: 10000, description: 'Every ARI request (and the websocket open) fails after this many ms.' },
    resync: { type: 'boolean', default: true, description: 'After each (re)connect, list live channels to rebuild call state (ARI alone).' },
  },
};

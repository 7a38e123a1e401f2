// The `pbx.ami` config section: its TypeScript shape and its part of the config's JSON Schema.
import { reconnectSchema, type BackoffPolicy } from '../../util/backoff.js';
import type { JsonSchema } from '../../util/json-schema.js';
import { secretSchema } from '../../util/secret.js';

export interface AmiConfig {
  host: string;
  port: number;
  username: string;
  /** Always the resolved value once loaded, whatever form the file used. */
  secret: string;
  reconnect: BackoffPolicy;
  actionTimeoutMs: number;
  resync: boolean;
  reconcileIntervalSeconds: number;
  /** AMI over TLS (manager.conf tlsenable); absent or false: plain TCP. */
  tls?: boolean | AmiTlsConfig;
  maxFrameBytes: number;
  maxHeaders: number;
  maxLineBytes: number;
}

export interface AmiTlsConfig {
  ca?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
}

export const amiConfigSchema: JsonSchema = {
  type: 'object',
  description: 'Asterisk Manager Interface connection (manager.conf).',
  additionalProperties: false,
  required: ['username', 'secret'],
  properties: {
    host: { type: 'string', minLength: 1, default: '127.0.0.1', description: 'AMI host name or address.' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 5038, description: 'AMI TCP port (with tls: the tlsbindaddr port, 5039 in Asterisk by default).' },
    username: { type: 'string', minLength: 1, description: 'AMI user ([section] name in manager.conf).' },
    secret: secretSchema('AMI password (`secret =` in manager.conf).'),
    reconnect: reconnectSchema,
    actionTimeoutMs: { type: 'integer', minimum: 1, default: 10000, description: 'Every AMI action (login, resync queries) fails after this many ms without a response.' },
    resync: { type: 'boolean', default: true, description: 'After each (re)connect, query live channels to rebuild call state.' },
    reconcileIntervalSeconds: {
      type: 'integer',
      minimum: 0,
      maximum: 86400,
      default: 60,
      description: 'With resync: query live channels this often while connected and end the calls none of whose channels is left (a Hangup the bridge never got). 0: only after a (re)connect.',
    },
    tls: {
      description:
        "AMI over TLS (manager.conf tlsenable = yes; set port to tlsbindaddr's, 5039 by default). true: verify Asterisk's certificate against the system's CAs; or { ca, rejectUnauthorized, servername }. Without it AMI (secret included) crosses the network in clear text.",
      oneOf: [
        { type: 'boolean' },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            ca: { type: 'string', minLength: 1, description: "Absolute path of a PEM file with the CA (or Asterisk's self-signed certificate) to trust, or the PEM text itself. Default: the system's CAs." },
            rejectUnauthorized: { type: 'boolean', description: 'Refuse a certificate that does not verify (default true). false only for tests: it lets anyone in the middle read the AMI secret.' },
            servername: { type: 'string', minLength: 1, description: 'The name the certificate must carry, when host is an address or another name.' },
          },
        },
      ],
    },
    maxFrameBytes: {
      type: 'integer',
      minimum: 1024,
      maximum: 16 * 1024 * 1024,
      default: 65536,
      description: 'An AMI frame larger than this (bytes) is dropped, logged and counted (crm_bridge_ami_frames_dropped_total); real frames are a few KB.',
    },
    maxHeaders: { type: 'integer', minimum: 16, maximum: 100000, default: 512, description: 'An AMI frame with more header lines than this is dropped, logged and counted; real frames have under 100.' },
    maxLineBytes: { type: 'integer', minimum: 256, maximum: 16 * 1024 * 1024, default: 8192, description: 'An AMI frame with a line longer than this (bytes) is dropped, logged and counted; memory for a line never exceeds it.' },
  },
};

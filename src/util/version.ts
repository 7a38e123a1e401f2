// The package version, read once from package.json (relative to this module: works from dist/).
import { readFileSync } from 'node:fs';

export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const USER_AGENT = `asterisk-crm-bridge/${VERSION}`;

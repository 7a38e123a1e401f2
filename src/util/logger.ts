import pino, { type Logger, type LoggerOptions } from 'pino';

/**
 * Paths redacted from every log line. Secrets must never reach a log, even at debug level:
 * AMI secrets, tokens, passwords, authorization headers — wherever they appear in objects we log.
 */
export const REDACT_PATHS = [
  'secret',
  '*.secret',
  '*.*.secret',
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  'config.pbx.ami.secret',
  'config.pbx.ari.password',
];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

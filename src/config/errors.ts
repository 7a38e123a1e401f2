/** Exit status for an unusable configuration (sysexits.h EX_CONFIG); systemd shows it by name. */
export const EXIT_CONFIG = 78;

/**
 * The configuration cannot be used. `errors` lists every problem found, one line each
 * (`pbx.ami.port: must be <= 65535 (is 70000)`); `message` is the whole report, ready to print.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    /** The config file, or a description of the source (`defaults`). */
    readonly source: string,
    readonly errors: string[],
  ) {
    const count = errors.length === 1 ? '1 problem' : `${errors.length} problems`;
    super(`${source}: configuration is not valid (${count}):\n${errors.map((e) => `  - ${e}`).join('\n')}`);
  }
}

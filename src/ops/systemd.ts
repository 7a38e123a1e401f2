// systemd's notify protocol (sd_notify(3)), for `Type=notify` units: READY=1 once AMI is logged
// in and the sinks run, STATUS= lines, RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1
// on shutdown, and WATCHDOG=1 pings at half of WatchdogSec while the event loop turns.
//
// The protocol is one datagram per message to the unix socket in $NOTIFY_SOCKET. Node has no
// unix datagram sockets, so the well-kept `unix-dgram` addon sends them (an optional
// dependency: without it, or without $NOTIFY_SOCKET, every call here is a no-op, and a daemon
// started by systemd with NOTIFY_SOCKET set says so loudly). Abstract socket names (`@…`) are
// not supported by the addon; systemd uses /run/systemd/notify for system services.
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', fn: (err: Error) => void): void;
}
interface UnixDgram {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

function loadUnixDgram(): UnixDgram | null {
  try {
    return createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  } catch {
    return null;
  }
}

export interface Notifier {
  readonly enabled: boolean;
  ready(status?: string): void;
  status(text: string): void;
  reloading(): void;
  stopping(status?: string): void;
  /** Starts WATCHDOG=1 pings when systemd asked for them (WATCHDOG_USEC); returns the interval in ms, or null. */
  startWatchdog(healthy?: () => boolean): number | null;
  close(): void;
}

const NOOP: Notifier = {
  enabled: false,
  ready: () => undefined,
  status: () => undefined,
  reloading: () => undefined,
  stopping: () => undefined,
  startWatchdog: () => null,
  close: () => undefined,
};

/** A notifier for this process, from $NOTIFY_SOCKET; a no-op one when not run by systemd. */
export function systemdNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env): Notifier {
  const path = env.NOTIFY_SOCKET;
  if (!path) return NOOP;
  if (path.startsWith('@')) {
    log.warn({ notifySocket: path }, 'NOTIFY_SOCKET is an abstract socket, which this build cannot reach: systemd will not hear READY (use the unit in systemd/, which runs as a system service)');
    return NOOP;
  }
  const dgram = loadUnixDgram();
  if (!dgram) {
    log.error('NOTIFY_SOCKET is set but the optional unix-dgram module is missing (npm install unix-dgram): systemd will not hear READY and a Type=notify unit will time out');
    return NOOP;
  }
  const socket = dgram.createSocket('unix_dgram');
  socket.on('error', (err) => log.warn({ err }, 'systemd notify socket error'));
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const send = (lines: string[]) => {
    if (closed) return;
    const buf = Buffer.from(lines.join('\n'));
    socket.send(buf, 0, buf.length, path, (err) => {
      if (err) log.warn({ err: err.message, message: lines[0] }, 'could not notify systemd');
    });
  };
  // sd_notify's STATUS is one line.
  const clean = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 200);
  return {
    enabled: true,
    ready: (status) => send(['READY=1', ...(status ? [`STATUS=${clean(status)}`] : []), `MAINPID=${process.pid}`]),
    status: (text) => send([`STATUS=${clean(text)}`]),
    reloading: () => {
      const usec = process.hrtime.bigint() / 1000n; // CLOCK_MONOTONIC, as systemd >= 253 wants with RELOADING=1
      send(['RELOADING=1', `MONOTONIC_USEC=${usec}`, 'STATUS=reloading the configuration']);
    },
    stopping: (status) => send(['STOPPING=1', ...(status ? [`STATUS=${clean(status)}`] : [])]),
    startWatchdog(healthy = () => true) {
      const usec = Number(env.WATCHDOG_USEC);
      const pid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
      if (!Number.isFinite(usec) || usec <= 0 || pid !== process.pid) return null;
      const every = Math.max(100, Math.floor(usec / 2000));
      if (timer) clearInterval(timer);
      timer = setInterval(() => {
        if (healthy()) send(['WATCHDOG=1']);
        else log.warn('watchdog: not pinging systemd, the daemon is not healthy');
      }, every);
      timer.unref();
      send(['WATCHDOG=1']);
      return every;
    },
    close() {
      if (timer) clearInterval(timer);
      timer = null;
      closed = true;
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}

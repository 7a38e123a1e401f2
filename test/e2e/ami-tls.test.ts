// AMI over TLS against a real Asterisk (manager.conf tlsenable) with a self-signed certificate
// made for this test: the source logs in, resyncs, sends actions and receives events over TLS;
// a certificate it was not told to trust is refused.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t from 'tap';
import { AmiSource, type AmiStatus } from '../../dist/sources/ami/source.js';
import type { AmiEvent } from '../../dist/normalizer/ami-event.js';
import { withTimeout } from '../../lab/ami-driver.js';
import { BRIDGE_AMI_SECRET, BRIDGE_AMI_USER, freePort, startAsterisk } from '../../lab/asterisk.js';

/** A self-signed certificate for 127.0.0.1 and localhost, valid for a day. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'ami-cert.pem');
  const key = path.join(dir, 'ami-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

/** Resolves once something accepts TCP connections on the port (Asterisk's TLS listener after a reload). */
async function listening(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${deadlineMs} ms`);
    await new Promise<void>((r) => setTimeout(r, 100)); // polling a port: there is no event to wait for
  }
}

t.test('given Asterisk with tlsenable and a self-signed certificate', async (t) => {
  const asterisk = await startAsterisk({ name: 'ami-tls' });
  t.teardown(() => asterisk.stop());
  const hostEtc = path.join(asterisk.root, asterisk.etcDir);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ami-tls-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const { cert, key } = selfSigned(tmp);
  fs.copyFileSync(cert, path.join(hostEtc, 'ami-cert.pem'));
  fs.copyFileSync(key, path.join(hostEtc, 'ami-key.pem'));
  const tlsPort = await freePort();
  const managerConf = path.join(hostEtc, 'manager.conf');
  const conf = fs.readFileSync(managerConf, 'utf8');
  fs.writeFileSync(
    managerConf,
    conf.replace('[general]\n', `[general]\ntlsenable = yes\ntlsbindaddr = 127.0.0.1:${tlsPort}\ntlscertfile = ${asterisk.etcDir}/ami-cert.pem\ntlsprivatekey = ${asterisk.etcDir}/ami-key.pem\n`),
  );
  await asterisk.cli('manager reload');
  await listening(tlsPort, 15_000);

  const open = (tls: { ca?: string } | false, logs: Array<Record<string, unknown>> = []) => {
    const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const source = new AmiSource({ host: '127.0.0.1', port: tlsPort, tls, username: BRIDGE_AMI_USER, secret: BRIDGE_AMI_SECRET, reconnect: false, actionTimeoutMs: 5000, resync: true, log });
    t.teardown(() => source.stop());
    return source;
  };

  t.test('when the bridge trusts that certificate, then it logs in, resyncs, and actions and events travel over TLS', async (t) => {
    const logs: Array<Record<string, unknown>> = [];
    const source = open({ ca: cert }, logs);
    const events: AmiEvent[] = [];
    source.input$.subscribe((i) => i.kind === 'event' && events.push(i.event));
    await source.start();
    await withTimeout(source.loggedIn, 15_000, 'the login over TLS');
    const res = await source.action({ action: 'Ping' });
    t.equal(res.response, 'Success', 'then an action is answered');
    const seen = new Promise<AmiEvent>((resolve) => source.input$.subscribe((i) => i.kind === 'event' && i.event.userevent === 'tls-check' && resolve(i.event)));
    await source.action({ action: 'UserEvent', userevent: 'tls-check', marker: 'over-tls' });
    t.equal((await withTimeout(seen, 10_000, 'the UserEvent over TLS')).marker, 'over-tls', 'then events arrive');
    const channels = await source.list({ action: 'CoreShowChannels' }, 'CoreShowChannelsComplete');
    t.ok(channels.some((e) => e.event === 'CoreShowChannelsComplete'), 'then list actions complete');
    t.ok(logs.some((l) => l.msg === 'AMI state resynchronized'), 'then the resync after login ran');
  });

  t.test('when the bridge is not told to trust it, then it refuses the connection and says why', async (t) => {
    const source = open({});
    const ended = new Promise<AmiStatus>((resolve) => source.status$.subscribe((s) => s.state === 'disconnected' && resolve(s)));
    await source.start();
    const status = await withTimeout(ended, 15_000, 'the refused connection');
    t.match(status.lastError, /self[- ]signed/i, 'then the error names the unverified certificate');
    t.equal(status.logins, 0, 'then it never logged in');
  });
});

// A fault-injection TCP proxy for integration tests: it sits between runwarden and a real server
// (MLflow, Redis) on a free loopback port and, per new connection, passes traffic through or
// injects a fault. Faults apply to connections accepted after `setMode` (runwarden's transport
// opens a fresh connection per request on loopback, so each request sees the mode of its time);
// `setMode(..., { existing: true })` also applies 'hang' and 'reset' to connections already open
// (needed for long-lived clients: Redis, or an HTTP client with keep-alive).
//
// Modes:
//   pass         forward both ways untouched
//   delay        wait `delayMs` (or until the `until` promise settles) before forwarding the
//                request (then forward untouched); with `outliveClient` the request lands even
//                when the client timed out meanwhile; `onlyRequests` holds only matching requests
//   hang         accept, read, never answer, never close (until the mode changes or close())
//   http503      answer every request with 503 Service Unavailable and close
//   reset        accept, then destroy the socket with RST
//   refuse       stop listening altogether (ECONNREFUSED), as a server that is down
//   dropMidBody  forward the request, pass `dropAfterBytes` of the answer, then reset
import { connect, createServer, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'delay' | 'hang' | 'http503' | 'reset' | 'refuse' | 'dropMidBody';

export interface FaultOptions {
  delayMs?: number;
  /** 'delay' only: hold each request until this settles (instead of `delayMs`). */
  until?: Promise<unknown>;
  dropAfterBytes?: number;
  /**
   * 'delay' only: hold just the requests whose request line (`POST /api/... HTTP/1.1`) matches;
   * others pass untouched. Relies on one request per connection (runwarden's loopback transport).
   */
  onlyRequests?: RegExp;
  /** Also apply 'hang'/'reset'/'refuse' to connections already open. */
  existing?: boolean;
  /**
   * 'delay' only: forward the held request even if the client has gone (timed out), and keep the
   * server's connection open so it processes the request (a late-landing write). Without it a
   * client that left takes the request with it (uvicorn drops a request whose client closed).
   */
  outliveClient?: boolean;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` (for HTTP targets). */
  url: string;
  port: number;
  mode(): FaultMode;
  setMode(mode: FaultMode, opts?: FaultOptions): Promise<void>;
  /** Connections accepted so far, how many of them met each mode, and requests held by `onlyRequests`. */
  stats(): { accepted: number; byMode: Record<string, number>; held: number };
  close(): Promise<void>;
}

const RESPONSE_503 =
  'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n' +
  'Content-Length: 64\r\n\r\n{"error_code":"TEMPORARILY_UNAVAILABLE","message":"fault proxy"}';

/** Start a proxy to `target` (`host:port` or `http://host:port`). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const t = new URL(target.includes('://') ? target : `tcp://${target}`);
  const targetHost = t.hostname;
  const targetPort = Number(t.port);
  let current: FaultMode = 'pass';
  let opts: FaultOptions = {};
  let accepted = 0;
  let held = 0;
  const byMode: Record<string, number> = {};
  const sockets = new Set<Socket>();
  const hung = new Set<Socket>();
  let port = 0;
  let server: Server;

  const handle = (client: Socket) => {
    accepted++;
    const mode = current;
    byMode[mode] = (byMode[mode] ?? 0) + 1;
    sockets.add(client);
    client.on('close', () => {
      sockets.delete(client);
      hung.delete(client);
    });
    client.on('error', () => {});
    if (mode === 'reset' || mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'hang') {
      hung.add(client);
      client.resume();
      return;
    }
    if (mode === 'http503') {
      client.once('data', () => client.end(RESPONSE_503));
      return;
    }
    const upstream = connect(targetPort, targetHost);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    // outliveClient: the held request still reaches the server whole (no FIN, no abort after it),
    // as a create the server commits after the client gave up on it.
    const o = opts;
    let outlive = mode === 'delay' && o.outliveClient === true && !o.onlyRequests;
    client.on('close', () => {
      if (!outlive) upstream.destroy();
    });
    const forwardRequest = () => client.pipe(upstream, { end: !outlive });
    const hold = () => {
      if (o.until) void o.until.finally(forwardRequest);
      else setTimeout(forwardRequest, o.delayMs ?? 1_000);
    };
    if (mode === 'delay' && o.onlyRequests) {
      const only = o.onlyRequests;
      client.once('data', (first: Buffer) => {
        client.pause();
        client.unshift(first);
        const line = first.toString('latin1', 0, Math.min(first.length, 1024)).split('\r\n')[0] ?? '';
        if (!only.test(line)) return forwardRequest();
        outlive = o.outliveClient === true;
        held++;
        hold();
      });
    } else if (mode === 'delay') {
      client.pause();
      hold();
    } else {
      forwardRequest();
    }
    if (mode === 'dropMidBody') {
      let passed = 0;
      const limit = opts.dropAfterBytes ?? 64;
      upstream.on('data', (buf: Buffer) => {
        if (passed >= limit) return;
        const room = limit - passed;
        client.write(buf.subarray(0, room));
        passed += Math.min(room, buf.length);
        if (passed >= limit) {
          upstream.destroy();
          client.resetAndDestroy();
        }
      });
    } else {
      upstream.pipe(client);
    }
  };

  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server = createServer(handle);
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        const addr = server.address();
        if (addr && typeof addr === 'object') port = addr.port;
        resolve();
      });
    });
  // Stops accepting at once; connections still open (kept alive) do not hold it up.
  const stopListening = () =>
    new Promise<void>((resolve) => {
      server.close();
      setImmediate(resolve);
    });

  await listen(0);

  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    mode: () => current,
    async setMode(mode, o = {}) {
      const was = current;
      current = mode;
      opts = o;
      // Open connections go first: closing the listener waits until they have closed.
      if (o.existing && (mode === 'reset' || mode === 'refuse')) {
        for (const s of sockets) s.resetAndDestroy();
      }
      if (mode === 'refuse' && was !== 'refuse') await stopListening();
      if (mode !== 'refuse' && was === 'refuse') await listen(port);
      if (o.existing && mode === 'hang') {
        for (const s of sockets) s.pause();
      }
      if (mode !== 'hang') {
        for (const s of hung) s.destroy();
        hung.clear();
      }
    },
    stats: () => ({ accepted, byMode: { ...byMode }, held }),
    async close() {
      for (const s of sockets) s.destroy();
      if (current !== 'refuse') await stopListening();
    },
  };
}

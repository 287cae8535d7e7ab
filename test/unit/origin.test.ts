// The DNS-rebinding checks of `runwarden serve`: loopback is decided on parsed addresses, never on a
// name's prefix, for both the Origin and the Host header.
import { describe, expect, it } from 'vitest';
import { hostOfHeader, isLoopbackHostname, originAllowed } from '../../src/mcp/origin.js';

const none = new Set<string>();

describe('Origin check', () => {
  it.each([
    'http://127.0.0.1:7341',
    'http://127.0.0.1',
    'https://127.8.9.10',
    'http://localhost:3000',
    'http://[::1]:7341',
    'http://127.1',
  ])('originAllowed: %s is loopback and allowed', (origin) => {
    expect(originAllowed(origin, none)).toBe(true);
  });

  it.each([
    'http://127.0.0.1.evil.example',
    'http://127.evil.example',
    'http://127.0.0.1.nip.io:7341',
    'http://localhost.evil.example',
    'http://evil.example',
    'http://128.0.0.1',
    'null',
    'file://',
    'chrome-extension://abcdef',
    'http://user@127.0.0.1',
    'not a url',
  ])('originAllowed: %s is refused', (origin) => {
    expect(originAllowed(origin, none)).toBe(false);
  });

  it('originAllowed: no Origin (a non-browser client) and an exact configured origin are allowed', () => {
    expect(originAllowed(undefined, none)).toBe(true);
    expect(originAllowed('https://app.example', new Set(['https://app.example']))).toBe(true);
    expect(originAllowed('https://app.example.evil', new Set(['https://app.example']))).toBe(false);
  });
});

describe('Host header check', () => {
  it.each([
    ['127.0.0.1:7341', '127.0.0.1'],
    ['LOCALHOST', 'localhost'],
    ['[::1]:7341', '[::1]'],
    ['127.1', '127.0.0.1'],
    ['mcp.example:443', 'mcp.example'],
  ])('hostOfHeader: %s is the host %s', (header, host) => {
    expect(hostOfHeader(header)).toBe(host);
  });

  it.each([
    'evil@127.0.0.1',
    '127.0.0.1/x',
    '',
    'a b',
  ])('hostOfHeader: %j is not a plain host[:port]', (header) => {
    expect(hostOfHeader(header)).toBeUndefined();
  });

  it('isLoopbackHostname: 127/8 literals, localhost and ::1 only', () => {
    expect(['127.0.0.1', '127.255.0.9', 'localhost', '[::1]', '::1'].every(isLoopbackHostname)).toBe(true);
    expect(
      [
        '127.0.0.1.evil.example',
        '127.evil.example',
        '1127.0.0.1',
        '127.0.0.256',
        '0.0.0.0',
        'evil.localhost',
      ].some(isLoopbackHostname),
    ).toBe(false);
  });
});

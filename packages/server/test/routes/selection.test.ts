import type { IncomingMessage } from 'node:http';
import { addSelectionVary, selectedName } from '../../src/routes/selection';

const req = (headers: Record<string, string | string[]>) => ({ headers }) as unknown as IncomingMessage;

describe('selectedName', () => {
  test.each([
    [{}, undefined],
    [{ 'x-devtunnel': 'ann' }, 'ann'],
    [{ 'x-devtunnel': ' ann ' }, 'ann'],
    [{ cookie: 'devtunnel=ann' }, 'ann'],
    [{ cookie: 'a=1; devtunnel=bob; b=2' }, 'bob'],
    [{ cookie: 'a=1;devtunnel="bob"' }, 'bob'],
    // Another cookie whose name ends in the key is not the selection.
    [{ cookie: 'mydevtunnel=eve; x=1' }, undefined],
    [{ cookie: 'x=devtunnel=eve' }, undefined],
    [{ baggage: 'devtunnel=ann' }, 'ann'],
    [{ baggage: 'userId=1, devtunnel = ann ;prop=1' }, 'ann'],
    [{ baggage: ['k=v', 'devtunnel=bob'] }, 'bob'],
    [{ baggage: 'devtunnel=%61nn' }, 'ann'],
    // The header is per request: it wins over the cookie, the cookie over baggage.
    [{ 'x-devtunnel': 'ann', cookie: 'devtunnel=bob', baggage: 'devtunnel=carl' }, 'ann'],
    [{ cookie: 'devtunnel=bob', baggage: 'devtunnel=carl' }, 'bob'],
    [{ cookie: 'other=1', baggage: 'devtunnel=carl' }, 'carl'],
    // Not a name: nobody is selected (the real app answers), never an error.
    [{ 'x-devtunnel': 'Ann' }, undefined],
    [{ 'x-devtunnel': 'a'.repeat(64) }, undefined],
    [{ 'x-devtunnel': 'ann, bob' }, undefined],
    [{ cookie: 'devtunnel=../etc' }, undefined],
    [{ baggage: 'devtunnel=%E0%A4%A' }, undefined],
    [{ baggage: `${'x=1,'.repeat(3000)}devtunnel=ann` }, undefined],
  ] as Array<[Record<string, string | string[]>, string | undefined]>)('%j → %s', (headers, expected) => {
    expect(selectedName(req(headers))).toBe(expected);
  });
});

describe('addSelectionVary', () => {
  test.each([
    [[], ['Vary', 'Cookie, X-Devtunnel, Baggage']],
    [['Vary', 'Accept-Encoding'], ['Vary', 'Accept-Encoding, Cookie, X-Devtunnel, Baggage']],
    [['vary', 'cookie'], ['vary', 'cookie, X-Devtunnel, Baggage']],
    [['Vary', '*'], ['Vary', '*']],
  ])('%j → %j', (flat, expected) => {
    const copy = [...flat];
    addSelectionVary(copy);
    expect(copy).toEqual(expected);
  });
});

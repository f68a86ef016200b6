import { closingFields, createBatchedWriter } from '../src/protocol';

test('the batched writer gathers lines into one write: after its delay, at its size, or on flush()', async () => {
  const writes: string[] = [];
  const out = createBatchedWriter((t) => writes.push(t), 30, 10);
  out.write('a\n');
  out.write('b\n');
  expect(writes).toEqual([]);
  await new Promise((resolve) => setTimeout(resolve, 60));
  expect(writes).toEqual(['a\nb\n']);
  out.write('0123456789\n');
  expect(writes).toEqual(['a\nb\n', '0123456789\n']);
  out.write('c\n');
  out.flush();
  out.flush();
  expect(writes).toEqual(['a\nb\n', '0123456789\n', 'c\n']);
});

test('closingFields ends an object with the fields\' own JSON, or closes it when there are none', () => {
  expect(`{"a":0${closingFields({ b: 'x"y', c: [1] })}`).toBe('{"a":0,"b":"x\\"y","c":[1]}');
  expect(JSON.parse(`{"a":0${closingFields({ b: 'x"y' })}`)).toEqual({ a: 0, b: 'x"y' });
  expect(`{"a":0${closingFields({})}`).toBe('{"a":0}');
  expect(`{"a":0${closingFields(undefined)}`).toBe('{"a":0}');
});

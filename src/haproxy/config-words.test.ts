import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSections, splitConfigWords } from './config-words.js';

test('splitConfigWords: HAProxy word rules', () => {
  const table: [string, string[]][] = [
    ['  command /bin/x -a  -b\t-c', ['command', '/bin/x', '-a', '-b', '-c']],
    ['a "b c" d', ['a', 'b c', 'd']],
    ["a 'b \"c\" $X' d", ['a', 'b "c" $X', 'd']],
    ['a b\\ c', ['a', 'b c']],
    ['a \\# b # comment', ['a', '#', 'b']],
    ['a "#not comment"', ['a', '#not comment']],
    ['a "" b', ['a', '', 'b']],
    ['x "a\\"b"', ['x', 'a"b']],
    ['x \\x41\\x42', ['x', 'AB']],
    ['x a"b c"d', ['x', 'ab cd']],
    ['   ', []],
    ['# only a comment', []],
  ];
  for (const [line, words] of table) assert.deepEqual(splitConfigWords(line), words, line);
});

test('splitConfigWords: environment expansion only inside double quotes', () => {
  const env = { PORT: '8081', EMPTY: '' };
  assert.deepEqual(splitConfigWords('c "$PORT" "${PORT}x" $PORT \'$PORT\'', env), ['c', '8081', '8081x', '$PORT', '$PORT']);
  assert.deepEqual(splitConfigWords('c "${UNSET-9}" "${EMPTY-7}" "${UNSET}"', env), ['c', '9', '7', '']);
  // Without an env, text is kept as written.
  assert.deepEqual(splitConfigWords('c "${PORT}"'), ['c', '${PORT}']);
});

test('configSections: sections open at their keyword, indented or not; comments and blanks carry nothing', () => {
  const text = [
    'global',
    '    maxconn 10 # comment',
    '',
    '# backend commented',
    '  backend web',
    '    server a 10.0.0.1:80 check',
    '    server "b c" 10.0.0.2:80',
    'listen tcp1',
    '    bind :81',
  ].join('\n');
  const sections = configSections(text);
  assert.deepEqual(sections.map((s) => [s.keyword, s.name, s.header.line, s.body.map((l) => l.words)]), [
    ['global', '', 1, [['maxconn', '10']]],
    ['backend', 'web', 5, [['server', 'a', '10.0.0.1:80', 'check'], ['server', 'b c', '10.0.0.2:80']]],
    ['listen', 'tcp1', 8, [['bind', ':81']]],
  ]);
});

test('configSections with `only`: the same sections, holding just the lines that start with those words', () => {
  const text = [
    'global',
    '    maxconn 10',
    'frontend fe',
    '    bind :80',
    '    "bind" :81',
    '    b\\ind :82',
    '    default_backend web',
    '  backend web',
    '    server a 10.0.0.1:80 check',
    '    serverx b 10.0.0.2:80',
    '    "server" c 10.0.0.3:80',
    '    # server d 10.0.0.4:80',
  ].join('\n');
  const only = new Set(['bind', 'server']);
  const full = configSections(text).map((s) => ({ ...s, body: s.body.filter((l) => only.has(l.words[0]!)) }));
  assert.deepEqual(configSections(text, only), full);
  assert.deepEqual(configSections(text, new Set(['server'])).map((s) => s.body.map((l) => l.words[2])), [[], [], ['10.0.0.1:80', '10.0.0.3:80']]);
});

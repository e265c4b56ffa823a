/**
 * The differential corpus: templates rendered by tsalt and by the real Jinja2 (with Salt's
 * settings) and compared byte for byte. Sections follow Jinja2's Template Designer
 * documentation, then the constructs of issue 10, then generated combinations of operators,
 * filters and tests over sample values.
 */
export interface Case {
  template: string;
  context?: Record<string, unknown>;
  files?: Record<string, string>;
}

const ctx = {
  s: 'Hello World',
  e: '',
  n: 42,
  neg: -7,
  f: 2.5,
  t: true,
  no: false,
  z: null,
  l: [3, 1, 2],
  sl: ['b', 'A', 'c', 'a'],
  el: [],
  d: { b: 2, a: 1, c: 3 },
  ed: {},
  users: [
    { name: 'ann', age: 31, city: 'Oslo', admin: true, tags: ['x'] },
    { name: 'bob', age: 25, city: 'Rome', admin: false, tags: [] },
    { name: 'Cid', age: 31, city: 'oslo', admin: true, tags: ['y', 'z'] },
  ],
  nested: { a: { b: { c: 'deep' } }, list: [{ k: 'v0' }, { k: 'v1' }] },
  html: '<a href="x">T&C</a>',
  multi: 'line one\nline two\n\nline four',
  words: 'the quick brown fox jumps over the lazy dog',
};

/** Jinja2 Template Designer documentation, section by section. */
const syntax: string[] = [
  // variables, attributes and items
  '{{ s }} {{ n }} {{ t }} {{ z }} {{ l }} {{ d }}',
  "{{ d.a }} {{ d['b'] }} {{ nested.a.b.c }} {{ nested['a']['b']['c'] }} {{ nested.list[1].k }} {{ l[0] }} {{ l[-1] }} {{ l[-3] }}",
  '{{ users[0].name }} {{ users[-1]["city"] }} {{ s[0] }} {{ s[-1] }}',
  // comments, whitespace control, escaping
  'a {# comment #} b',
  'a {#- comment -#} b',
  'a\n  {%- if t %}\nb\n  {%- endif %}\nc\n',
  'a  {{- s -}}  b',
  "{{ '{{' }} x {{ '}}' }}",
  '{% raw %}{{ not rendered }} {% if %}{% endraw %}',
  'line\n{% if t %}\nyes\n{% endif %}\nend\n',
  'x {%+ if t %} y {% endif %} z',
  // literals
  "{{ 'single' }} {{ \"double\" }} {{ 'it\\'s' }} {{ \"tab\\there\" }} {{ 'a\\nb' }}",
  '{{ 42 }} {{ -3 }} {{ 1_000 }} {{ 0 }} {{ 2.5 }} {{ 1e3 }} {{ 0.1 }}',
  "{{ [1, 'two', [3]] }} {{ ('a', 1) }} {{ ('x',) }} {{ () }} {{ {'k': 'v', 'n': [1]} }} {{ {} }} {{ [] }}",
  '{{ true }} {{ True }} {{ false }} {{ False }} {{ none }} {{ None }}',
  // math
  '{{ 1 + 2 }} {{ 5 - 7 }} {{ 3 * 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** 3 ** 2 }}',
  '{{ 7 / 2 }} {{ 1 / 4 }} {{ 2.5 * 2 }} {{ 0.1 + 0.2 }} {{ 10 / 3 }}',
  "{{ 'ab' * 3 }} {{ [1] * 3 }} {{ [1, 2] + [3] }} {{ 'a' + 'b' }} {{ (1, 2) + (3,) }}",
  '{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 * -1 }} {{ not 1 == 2 }}',
  // comparisons, logic
  '{{ 1 == 1 }} {{ 1 != 2 }} {{ 2 > 1 }} {{ 2 >= 2 }} {{ 1 < 2 }} {{ 3 <= 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}',
  "{{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ 1 == 1.0 }} {{ true == 1 }}",
  "{{ t and n }} {{ no and n }} {{ no or 'x' }} {{ e or 'empty' }} {{ el or 'none' }} {{ not el }} {{ not d }} {{ z or 0 }}",
  '{{ 1 in l }} {{ 9 in l }} {{ 9 not in l }} {{ "a" in d }} {{ "World" in s }} {{ "z" not in s }}',
  // other operators
  "{{ 'a' ~ 1 ~ none ~ true ~ [1] }} {{ n ~ '' }} {{ s|upper ~ '!' }}",
  "{{ 'yes' if t else 'no' }} {{ 'a' if no else 'b' if t else 'c' }} {{ (1 if t else 2) + 1 }}",
  // python methods
  "{{ s.upper() }} {{ s.lower() }} {{ s.split() }} {{ s.split('o') }} {{ s.split('o', 1) }} {{ s.rsplit(' ', 1) }} {{ '  x  '.strip() }} {{ 'xxaxx'.strip('x') }}",
  "{{ s.startswith('He') }} {{ s.endswith(('x', 'ld')) }} {{ s.replace('o', '0') }} {{ s.replace('o', '0', 1) }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.count('o') }}",
  "{{ '-'.join(['a', 'b']) }} {{ 'a,b,,c'.split(',') }} {{ 'x'.center(5) }}| {{ 'x'.ljust(3) }}| {{ 'x'.rjust(3) }} {{ '42'.zfill(5) }} {{ '-42'.zfill(5) }}",
  "{{ 'hello world'.title() }} {{ 'hello WORLD'.capitalize() }} {{ 'Hi'.swapcase() }} {{ 'abc'.isalpha() }} {{ '12'.isdigit() }} {{ ' '.isspace() }} {{ 'ab'.islower() }} {{ 'AB'.isupper() }}",
  "{{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'a\\nb\\n'.splitlines() }} {{ 'k: v'.split(': ') }}",
  "{{ '{} and {}'.format('a', 'b') }} {{ '{0}{1}{0}'.format('x', 'y') }} {{ '{name}!'.format(name='n') }} {{ '{:>5}|{:<5}|{:^5}'.format('a', 'b', 'c') }} {{ '{:05d} {:.2f} {:x}'.format(42, 3.14159, 255) }}",
  "{{ '{0[a]} {1.b}'.format({'a': 1}, {'b': 2}) }} {{ '{!r}'.format('q') }} {{ '{:,}'.format(1234567) }}",
  "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }}",
  "{% set x = [1] %}{% do x.append(2) %}{% do x.extend([3, 4]) %}{% do x.insert(0, 0) %}{{ x }} {{ x.pop() }} {{ x.pop(0) }} {{ x }} {{ x.index(2) }} {{ x.count(1) }}",
  "{% set z = [3, 1, 2] %}{% do z.sort() %}{{ z }}{% do z.sort(reverse=true) %}{{ z }}{% set w = ['b', 'a'] %}{% do w.sort() %}{{ w }}",
  "{% set y = {'a': 1} %}{% do y.update({'b': 2}) %}{% do y.update(c=3) %}{{ y }} {{ y.pop('a') }} {{ y.setdefault('d', 4) }} {{ y }} {{ y.copy() }}",
  // set, block set, namespace
  '{% set a = 1 %}{% set b, c = 2, 3 %}{{ a }}{{ b }}{{ c }}',
  '{% set a, b = [1, 2] %}{{ a }}-{{ b }}',
  '{% set block %}inner {{ n }}{% endset %}[{{ block }}]',
  '{% set block | upper %}inner {{ n }}{% endset %}[{{ block }}]',
  '{% set ns = namespace(found=false, count=0) %}{% for u in users %}{% if u.admin %}{% set ns.found = true %}{% set ns.count = ns.count + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.count }}',
  '{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{% endfor %}{{ x }}',
  '{% if t %}{% set v = 1 %}{% else %}{% set v = 2 %}{% endif %}{{ v }} {% if no %}{% set w = 1 %}{% else %}{% set w = 2 %}{% endif %}{{ w }}',
  "{% macro m(x) %}{% if x %}{% set y = 'a' %}{% else %}{% set y = 'b' %}{% endif %}{{ y }}{% endmacro %}{{ m(1) }}{{ m(0) }}",
  '{% set x = 1 %}{% if t %}{% set x = 2 %}{% endif %}{{ x }}',
  // for loops
  '{% for i in l %}{{ i }}{% endfor %}',
  '{% for k in d %}{{ k }}{% endfor %} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}',
  '{% for c in "abc" %}{{ c }}.{% endfor %}',
  '{% for i in el %}x{% else %}empty{% endfor %}',
  '{% for i in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}',
  "{% for i in l %}{{ loop.cycle('odd', 'even') }} {% endfor %}",
  '{% for i in l %}{{ loop.previtem }}>{{ i }}>{{ loop.nextitem }} {% endfor %}',
  '{% for i in [1, 1, 2, 3, 3] %}{% if loop.changed(i) %}{{ i }}{% endif %}{% endfor %}',
  '{% for i in l if i > 1 %}{{ i }}{{ loop.index }} {% endfor %}',
  '{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }} {% endfor %}',
  '{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}',
  "{% for item in [{'n': 'a', 'c': [{'n': 'b', 'c': []}]}] recursive %}{{ item.n }}{{ loop.depth }}[{{ loop(item.c) }}]{% endfor %}",
  '{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{% endfor %}{% endfor %}',
  // if
  '{% if n > 40 %}big{% elif n > 10 %}mid{% else %}small{% endif %}',
  '{% if el %}full{% else %}empty{% endif %} {% if ed %}x{% else %}y{% endif %} {% if e %}x{% else %}y{% endif %} {% if 0 %}x{% else %}y{% endif %} {% if z %}x{% else %}y{% endif %}',
  '{% if not no and (n or z) %}ok{% endif %}',
  // with
  '{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}',
  // filters block
  '{% filter upper %}shout {{ s }}{% endfilter %}',
  // macros
  "{% macro m(a, b='B', c=none) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} {{ m(1, c=3) }} {{ m(a='x') }}",
  '{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}',
  "{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }} {{ m(1, 3, 4, 5, x='y') }} {{ m(a=0, z=1) }}",
  "{% macro outer() %}{{ varargs }}{{ caller(9) }}{% endmacro %}{% call(v) outer(7) %}{{ v }}{{ varargs }}{% endcall %}",
  "{% macro w(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call w('b') %}inside {{ n }}{% endcall %}",
  '{% macro l(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) l([1, 2]) %}[{{ x }}]{% endcall %}',
  "{% macro m(x) %}{{ x }}{% endmacro %}{{ m('a') ~ m('b') }} {{ m.name }}",
  "{% macro m(a, b=1, c='x') %}{% endmacro %}{{ m.name }} {{ m.arguments }}",
  // global functions
  '{{ range(5) | list }} {{ range(2, 10, 3) | list }} {{ range(5, 0, -2) | list }}',
  "{{ dict(a=1, b='x') }} {% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}",
  "{% set j = joiner(', ') %}{% for i in l %}{{ j() }}{{ i }}{% endfor %}",
  // do, loop controls
  '{% set l2 = [] %}{% for i in range(3) %}{% do l2.append(i * 2) %}{% endfor %}{{ l2 }}',
];

/** The constructs issue 10 lists. */
const issue10: string[] = [
  "{% macro f(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ f(1, 2,) }} {{ dict(a=1,) }} {{ '{}'.format('x',) }}",
  "{{ s[0:5] }} {{ s[:5] }} {{ s[6:] }} {{ s[::-1] }} {{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ l[-2:] }} {{ s[-5:-1] }}",
  '{{ l[-1] }} {{ l[-2] }} {{ s[-3] }}',
  "{{ {2: 'a', True: 'b', 'x' ~ 1: 'c', none: 'n'} }} {% set k = 'dyn' %}{{ {k: 1} }}",
  "{{ 'a' if no else 'b' if no else 'c' }}",
  "{{ ' '.join(('a', 'b')) }} {{ (1, 2)[0] }} {{ ('a', 'b') | join('-') }}",
  "{% set x = {'a': {'b': 1}} %}{{ x }}{% set y = [{'k': {'l': [1]}}] %}{{ y }}",
  'text #} more',
  "{{ {'a': {'b': 1}} }} {{ [{'k': {'l': 2}}] }}",
  "{% set ns = namespace(v=1) %}{% set ns.v = ns.v + 1 %}{{ ns.v }}",
];

/** Filters of Jinja2 with their keyword arguments. */
const filters: string[] = [
  "{{ -3 | abs }} {{ neg | abs }} {{ f | abs }}",
  "{{ users | map(attribute='name') | join(',') }} {{ users | map(attribute='missing', default='?') | list }} {{ users | map('attr', 'age') | list }}",
  "{{ sl | map('upper') | list }} {{ l | map('string') | list }}",
  "{{ l | batch(2) | list }} {{ l | batch(2, 'x') | list }}",
  "{{ 'hello' | capitalize }} {{ 'x' | center(7) }}| {{ 'ab' | center(width=6) }}|",
  "{{ l | count }} {{ s | length }} {{ d | length }} {{ el | length }}",
  "{{ undefined_x | default('dv') }} {{ e | default('dv') }} {{ e | default('dv', true) }} {{ e | d('dv', boolean=true) }} {{ z | default('x') }}",
  "{{ d | dictsort }} {{ d | dictsort(reverse=true) }} {{ d | dictsort(by='value') }} {{ {'B': 1, 'a': 2} | dictsort }} {{ {'B': 1, 'a': 2} | dictsort(true) }}",
  "{{ html | escape }} {{ html | e }} {{ html | forceescape }}",
  '{{ 1 | filesizeformat }} {{ 999 | filesizeformat }} {{ 1000 | filesizeformat }} {{ 1234567 | filesizeformat }} {{ 1234567 | filesizeformat(true) }} {{ 1048576 | filesizeformat(binary=true) }}',
  "{{ l | first }} {{ s | first }} {{ l | last }} {{ s | last }} {{ users | first | attr('name') }}",
  "{{ '3.5' | float }} {{ 'x' | float }} {{ 'x' | float(default=1.5) }} {{ 3 | float }} {{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int(9) }} {{ '0x1A' | int(base=16) }} {{ '101' | int(base=2) }} {{ 4.7 | int }}",
  "{{ '%s-%s' | format('a', 'b') }} {{ '%d%%' | format(50) }} {{ '%(k)s' | format(k='v') }} {{ '%5.2f|' | format(3.14159) }} {{ '%-5s|' | format('ab') }} {{ '%r' | format('q') }}",
  "{% for g in users | groupby('city') %}{{ g.grouper }}:{{ g.list | map(attribute='name') | join(',') }};{% endfor %}",
  "{% for city, items in users | groupby('city', case_sensitive=true) %}{{ city }}={{ items | length }};{% endfor %}",
  "{% for g in users | groupby('age') %}{{ g.grouper }}:{{ g.list | length }};{% endfor %}",
  "{{ multi | indent }}|{{ multi | indent(2) }}|{{ multi | indent(width=2, first=true) }}|{{ multi | indent(2, blank=true) }}|{{ multi | indent('> ') }}",
  "{{ d | items | list }} {{ ed | items | list }}",
  "{{ l | join }} {{ l | join(', ') }} {{ users | join(', ', attribute='name') }} {{ sl | join(d=':') }}",
  "{{ d | list }} {{ s | list }} {{ l | list }}",
  "{{ s | lower }} {{ s | upper }} {{ s | title }} {{ 'hELLO wORLD' | title }} {{ \"it's a dog's\" | title }}",
  "{{ l | max }} {{ l | min }} {{ sl | max }} {{ sl | min }} {{ sl | max(case_sensitive=true) }} {{ users | max(attribute='age') | attr('name') }} {{ users | min(attribute='name') | attr('name') }}",
  "{{ d | pprint }} {{ s | pprint }}",
  "{{ l | select('odd') | list }} {{ l | reject('odd') | list }} {{ [0, 1, '', 'a', none] | select | list }} {{ l | select('>', 1) | list }} {{ l | select('in', [1, 3]) | list }} {{ sl | select('equalto', 'a') | list }}",
  "{{ users | selectattr('admin') | map(attribute='name') | list }} {{ users | rejectattr('admin') | map(attribute='name') | list }} {{ users | selectattr('age', '>', 30) | map(attribute='name') | list }} {{ users | selectattr('city', 'equalto', 'Rome') | list | length }}",
  "{{ s | replace('o', '0') }} {{ s | replace('o', '0', 1) }} {{ 'aaa' | replace('a', 'b', count=2) }} {{ 'a$b' | replace('$', '$&') }}",
  "{{ l | reverse | list }} {{ s | reverse }}",
  "{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.567 | round(2) }} {{ 2.1 | round(method='ceil') }} {{ 2.9 | round(0, 'floor') }} {{ 42 | round }} {{ -2.5 | round }}",
  "{{ l | slice(2) | list }} {{ [1, 2, 3, 4, 5] | slice(3) | list }} {{ [1, 2, 3, 4] | slice(3, 'x') | list }}",
  "{{ l | sort }} {{ l | sort(reverse=true) }} {{ sl | sort }} {{ sl | sort(case_sensitive=true) }} {{ users | sort(attribute='age') | map(attribute='name') | list }} {{ users | sort(attribute='age,name') | map(attribute='name') | list }} {{ users | sort(attribute='city', reverse=true) | map(attribute='name') | list }}",
  "{{ n | string }} {{ l | string }} {{ z | string }} {{ t | string }}",
  "{{ html | striptags }} {{ '<p>a  \n b</p>' | striptags }}",
  "{{ l | sum }} {{ users | sum(attribute='age') }} {{ l | sum(start=10) }}",
  "{{ d | tojson }} {{ 'x<y' | tojson }} {{ [1, 'a'] | tojson }} {{ d | tojson(indent=2) }}",
  "{{ '  x  ' | trim }}| {{ 'xxaxx' | trim('x') }}| {{ '..a..' | trim(chars='.') }}",
  "{{ words | truncate(9) }} {{ words | truncate(9, true) }} {{ words | truncate(20, end='…') }} {{ 'short' | truncate(3, leeway=0) }} {{ words | truncate(12, killwords=false, end='', leeway=0) }}",
  "{{ [1, 2, 1, 3] | unique | list }} {{ sl | unique | list }} {{ sl | unique(case_sensitive=true) | list }} {{ users | unique(attribute='age') | map(attribute='name') | list }}",
  "{{ 'a b&c/d' | urlencode }} {{ {'k': 'v w', 'x': 1} | urlencode }} {{ [('a', 1)] | urlencode }}",
  "{{ words | wordcount }} {{ '' | wordcount }}",
  "{{ words | wordwrap(10) }}|{{ words | wordwrap(10, wrapstring='<br>') }}|{{ 'abcdefghijkl mn' | wordwrap(5) }}|{{ 'abcdefghijkl mn' | wordwrap(5, break_long_words=false) }}",
  "{{ {'class': 'x', 'id': 1, 'skip': none} | xmlattr }}|{{ {'a': 'b'} | xmlattr(false) }}",
  "{{ s | safe }} {{ n | attr('real') is defined }}",
];

const tests: string[] = [
  '{{ x is defined }} {{ n is defined }} {{ x is undefined }} {{ z is none }} {{ n is none }} {{ t is true }} {{ 1 is true }} {{ no is false }} {{ t is boolean }} {{ 1 is boolean }}',
  '{{ n is integer }} {{ f is integer }} {{ f is float }} {{ n is float }} {{ n is number }} {{ s is number }} {{ t is number }} {{ s is string }} {{ n is string }}',
  '{{ d is mapping }} {{ l is mapping }} {{ l is sequence }} {{ s is sequence }} {{ d is sequence }} {{ n is sequence }} {{ l is iterable }} {{ n is iterable }}',
  '{{ range is callable }} {{ n is callable }} {{ n is divisibleby 2 }} {{ n is divisibleby(5) }} {{ 3 is odd }} {{ 3 is even }} {{ s is lower }} {{ "abc" is lower }} {{ "ABC" is upper }}',
  "{{ 1 is eq 1 }} {{ 1 is equalto(2) }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 1 is lt 2 }} {{ 1 is le 0 }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 2 }} {{ 1 is in [1, 2] }} {{ 'a' is in 'abc' }}",
  '{{ z is sameas none }} {{ t is sameas true }} {{ 1 is sameas true }} {{ l is sameas l }} {{ n is not none }} {{ n is not odd }}',
  "{{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }} {{ 'nope' is test }} {{ s is escaped }}",
];

/** Values that exercise each operator and filter. */
const VALUES = ["'abc'", "''", '0', '3', '-2', '1.5', 'true', 'false', 'none', '[1, 2]', '[]', "{'k': 1}", '{}', '(1,)'];
const BINOPS = ['+', '-', '*', '/', '//', '%', '**', '~', '==', '!=', '<', '>=', 'in', 'and', 'or'];
const VALUE_FILTERS = ['abs', 'capitalize', 'count', 'first', 'float', 'int', 'join', 'last', 'length', 'list', 'lower', 'max', 'min', 'pprint', 'reverse', 'round', 'sort', 'string', 'sum', 'title', 'trim', 'unique', 'upper', 'wordcount', 'tojson', 'items', 'dictsort', 'escape', 'striptags', 'urlencode', 'center', 'indent', 'truncate', 'wordwrap', 'batch(2)', 'slice(2)', 'select', 'reject'];
const LAZY = new Set(['unique', 'items', 'batch', 'slice', 'select', 'reject', 'reverse', 'map']);
const VALUE_TESTS = ['defined', 'none', 'boolean', 'false', 'true', 'integer', 'float', 'number', 'string', 'mapping', 'sequence', 'iterable', 'callable', 'odd', 'even', 'lower', 'upper', 'divisibleby 2'];

const SEQS = ["'abcdef'", '[0, 1, 2, 3, 4, 5]', '(1, 2, 3)', "''", '[]'];
const SLICE_PARTS = ['', '0', '1', '-1', '-2', '3', '10', '-10'];
const STEPS = ['', '1', '2', '-1', '-2'];
const STRINGS = ["'  Hello, World  '", "'a,b,,c'", "'x'", "''", "'MiXed Case words'", "'line1\\nline2\\n'", "'it''s'"];
const STR_CALLS = ['upper()', 'lower()', 'strip()', 'lstrip()', 'rstrip()', "split(',')", 'split()', "split(',', 1)", "rsplit(',', 1)", 'title()', 'capitalize()', "startswith('a')", "endswith('s')", "replace('a', 'A')", "find('o')", "count('l')", 'splitlines()', 'isdigit()', 'isalpha()', 'center(20)', 'ljust(6)', 'rjust(6)', 'zfill(6)', "partition(',')", "strip(' Hd')", 'swapcase()'];
const NUMBERS = ['0', '7', '-3', '2.5', '-0.5', '1234567', '3.0'];
const SPECS = ['', 'd', '5d', '<5', '>6', '^7', '05', '.2f', '+.1f', ',', 'x', 'o', 'b', 'e', '.3e', '%', '.1%', 'g'];
const PERCENT = ['%s', '%r', '%d', '%5d', '%-5d|', '%05d', '%.2f', '%x', '%e', '%+d', '%i', '%c'];

function generated(): string[] {
  const out: string[] = [];
  for (const q of SEQS) {
    const parts: string[] = [];
    for (const a of SLICE_PARTS) for (const b of ['', '2', '-1', '5']) for (const c of STEPS) parts.push(`{{ ${q}[${a}:${b}${c ? ':' + c : ''}] }}`);
    out.push(parts.join('|'));
  }
  for (const v of STRINGS) out.push(STR_CALLS.map((c) => `{{ ${v}.${c} }}`).join('|'));
  for (const n of NUMBERS) out.push(SPECS.filter((sp) => !(/[dxob]/.test(sp) && /\./.test(n))).map((sp) => `{{ '{:${sp}}'.format(${n}) }}`).join('|'));
  for (const n of NUMBERS) out.push(PERCENT.filter((p) => !(/[dxic]/.test(p) && /\./.test(n))).map((p) => `{{ '${p}' % ${n} }}`).join('|'));
  // whitespace control: every combination of - on both ends of blocks, expressions and comments
  for (const open of ['{%', '{%-', '{%+']) for (const close of ['%}', '-%}']) {
    out.push(`a  \n  ${open} if true ${close}  \n  b  \n  ${open} endif ${close}  \n  c`);
    out.push(`x\n${open} for i in [1, 2] ${close}\n  - {{ i }}\n${open} endfor ${close}\ny`);
  }
  for (const open of ['{{', '{{-']) for (const close of ['}}', '-}}']) out.push(`a \n ${open} 1 ${close} \n b`);
  for (const open of ['{#', '{#-']) for (const close of ['#}', '-#}']) out.push(`a \n ${open} c ${close} \n b`);
  // repr of awkward strings inside collections, and their JSON
  const AWKWARD = [`"a'b"`, `'a"b'`, `'a\\'b"c'`, `'back\\\\slash'`, `'tab\\there'`, `'new\\nline'`, `'é ü 中'`, `'\\x01\\x7f'`, `'<&>'`];
  for (const a of AWKWARD) out.push(`{{ [${a}] }} {{ {${a}: ${a}} }} {{ (${a},) }} {{ ${a} | tojson }} {{ [${a}] | tojson }} {{ ${a} | pprint }} {{ ${a} | length }} {{ ${a} | upper }} {{ ${a} | escape }} {{ ${a} | urlencode }}`);
  // comparisons and membership across types
  const MIXED = ['1', "'1'", 'none', 'true', '[1]', '(1,)', "{'1': 1}", '1.0'];
  for (const a of MIXED) out.push(MIXED.map((b) => `{{ ${a} == ${b} }}{{ ${a} != ${b} }}`).join(' '));
  for (const a of MIXED) for (const b of MIXED) out.push(`{{ ${a} < ${b} }}`, `{{ ${a} in ${b} }}`);
  // filter chains
  const CHAIN = ['sort', 'unique', 'reverse', 'first', 'last', 'length', 'sum', 'join', 'list', 'min', 'max', 'string', 'upper'];
  const lz = (f: string) => (LAZY.has(f) ? `${f} | list` : f);
  for (const f1 of CHAIN) for (const f2 of CHAIN) out.push(`{{ [3, 1, 2, 3] | ${lz(f1)} | ${lz(f2)} }}`);
  out.push(`{{ '\\d+' }} {{ 'a1b22' | regex_replace('\\d+', '#') if false else '\\d' | length }} {{ '\\101\\x41\\u0041' }} {{ 'line\\\nbreak' }}`);
  for (const n of NUMBERS) out.push(`{{ ${n} | round }} {{ ${n} | round(1) }} {{ ${n} | abs }} {{ ${n} | int }} {{ ${n} | float }} {{ ${n} | string }} {{ ${n} * 2 }} {{ ${n} / 2 }} {{ ${n} // 2 }} {{ ${n} % 2 }} {{ ${n} ** 2 }} {{ -${n} }}`);
  for (const a of VALUES) for (const op of BINOPS) for (const b of ['3', "'x'", '[1]', 'none']) out.push(`{{ ${a} ${op} ${b} }}`);
  for (const v of VALUES) out.push(`{{ ${v} }} {{ ${v} | string }} {{ not ${v} }} {% if ${v} %}T{% else %}F{% endif %}`);
  // filters that return iterators in Jinja2 are listed (printing an iterator shows its address)
  for (const v of VALUES) for (const f of VALUE_FILTERS) out.push(LAZY.has(f.replace(/\(.*/, '')) ? `{{ ${v} | ${f} | list }}` : `{{ ${v} | ${f} }}`);
  for (const v of VALUES) out.push(VALUE_TESTS.map((t) => `{{ ${v} is ${t} }}`).join(' '));
  for (const v of VALUES) out.push(`{% for x in ${v} %}{{ x }},{% endfor %}`);
  return out;
}

/** Template files: include, import, extends. */
const files = {
  'macros.j2': "{% macro hello(who='world') %}Hello {{ who }}!{% endmacro %}{% set value = 42 %}{% set _private = 1 %}",
  'ctx.j2': '{% set seen = n %}{% macro show() %}{{ n }}{% endmacro %}',
  'inc.j2': 'included {{ n }} {{ local_var | default("no-local") }}',
  'base.j2': '<{% block head %}H{% endblock %}|{% block body %}B{% endblock %}>',
  'map.yaml': 'a: 1\nlist: [x, y]\n',
};
const withFiles: string[] = [
  "{% import 'macros.j2' as m %}{{ m.hello() }} {{ m.hello('you') }} {{ m.value }}",
  "{% from 'macros.j2' import hello, value %}{{ hello('x') }}{{ value }}",
  "{% from 'macros.j2' import hello as h %}{{ h() }}",
  "{% from 'ctx.j2' import show with context %}{{ show() }}",
  "{% import 'ctx.j2' as c with context %}{{ c.seen }}",
  "{% set local_var = 'L' %}{% include 'inc.j2' %}",
  "{% set local_var = 'L' %}{% include 'inc.j2' without context %}",
  "{% include 'missing.j2' ignore missing %}ok",
  "{% include ['missing.j2', 'inc.j2'] %}",
  "{% extends 'base.j2' %}{% block body %}[{{ super() }}]{% endblock %}",
  "{% extends 'base.j2' %}{% block head %}h{% endblock %}",
];

/** Deterministic pseudo-random nesting of statements and expressions (seeded, same every run). */
function combinations(count: number): string[] {
  let seed = 20261206;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pick = <T>(a: T[]) => a[rnd(a.length)]!;
  const exprs = ['x', 'x + 1', 'x * 2', "x ~ '!'", 'items | length', 'items | sum', 'items[-1]', 'items[:2]', "d.get('k', 0)", 'ns.total', "'%s-%s' % (x, x)", 'x if x is odd else -x', '(x, x)', "{x: 'v'}", 'x in items', 'loop_var'];
  const gen = (depth: number): string => {
    const parts: string[] = [];
    const n = 1 + rnd(3);
    for (let i = 0; i < n; i++) {
      const k = depth > 2 ? 0 : rnd(7);
      if (k === 0) parts.push(`{{ ${pick(exprs).replace('loop_var', 'x')} }}`);
      else if (k === 1) parts.push(`{% for x in items %}{% set loop_var = loop.index %}${gen(depth + 1)}{% endfor %}`);
      else if (k === 2) parts.push(`{% if ${pick(['x > 1', 'items', 'not items', 'x is even', "'a' in 'abc'"])} %}${gen(depth + 1)}{% else %}${gen(depth + 1)}{% endif %}`);
      else if (k === 3) parts.push(`{% set x = ${pick(['x + 1', 'x * 3', 'items | length', 'ns.total'])} %}{{ x }}`);
      else if (k === 4) parts.push(`{% set ns.total = ns.total + x %}`);
      else if (k === 5) parts.push(`{% macro m${depth}(x, y=2) %}${gen(depth + 1)}{{ y }}{% endmacro %}{{ m${depth}(x) }}{{ m${depth}(x + 1, y=x) }}`);
      else parts.push(`{% with x = x + 10 %}${gen(depth + 1)}{% endwith %}`);
    }
    return parts.join('|');
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`{% set ns = namespace(total=0) %}{% set x = ${rnd(5)} %}{% set items = [1, 2, 3] %}{% set d = {'k': 1} %}${gen(0)}[{{ x }} {{ ns.total }}]`);
  return out;
}

export function corpus(): Case[] {
  const cases: Case[] = [];
  for (const t of [...syntax, ...issue10, ...filters, ...tests]) cases.push({ template: t, context: ctx });
  for (const t of withFiles) cases.push({ template: t, context: ctx, files });
  for (const t of generated()) cases.push({ template: t });
  for (const t of combinations(300)) cases.push({ template: t });
  return cases;
}

/**
 * Version comparison as dpkg and rpm do it, in-process: pkg.latest and version specs compare
 * many versions per run and a subprocess per comparison would dominate the run time.
 * Tests check both against the real `dpkg --compare-versions` and rpm's `rpm.vercmp`.
 */

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string | undefined): boolean => c !== undefined && /[A-Za-z]/.test(c);
const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

// ---- Debian (dpkg's verrevcmp) ----

function dpkgOrder(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = dpkgOrder(a[i]);
      const bc = dpkgOrder(b[j]);
      if (ac !== bc) return sign(ac - bc);
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff) return sign(firstDiff);
  }
  return 0;
}

/** `[epoch:]version[-release]`, the shape dpkg and rpm versions share. */
function splitEvr(v: string): [number, string, string | undefined] {
  let rest = v.trim();
  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? [epoch, rest.slice(0, dash), rest.slice(dash + 1)] : [epoch, rest, undefined];
}

/** dpkg: a missing Debian revision compares as the empty string. */
function splitDeb(v: string): [number, string, string] {
  const [e, u, r] = splitEvr(v);
  return [e, u, r ?? ''];
}

export function compareDeb(a: string, b: string): number {
  const [ea, ua, ra] = splitDeb(a);
  const [eb, ub, rb] = splitDeb(b);
  if (ea !== eb) return sign(ea - eb);
  return verrevcmp(ua, ub) || verrevcmp(ra, rb);
}

// ---- RPM (rpmvercmp + labelCompare) ----

function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const isAlnum = (c: string | undefined) => isDigit(c) || isAlpha(c);
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    // tilde sorts before everything, even the end of the string
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // caret sorts after the end of the string but before anything else
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;
    const num = isDigit(a[i]);
    const cls = num ? isDigit : isAlpha;
    let si = i;
    while (i < a.length && cls(a[i])) i++;
    let sj = j;
    while (j < b.length && cls(b[j])) j++;
    let s1 = a.slice(si, i);
    let s2 = b.slice(sj, j);
    // segments of different types: the numeric one is newer
    if (s2.length === 0) return num ? 1 : -1;
    if (num) {
      s1 = s1.replace(/^0+/, '');
      s2 = s2.replace(/^0+/, '');
      if (s1.length !== s2.length) return s1.length > s2.length ? 1 : -1;
    }
    if (s1 !== s2) return s1 < s2 ? -1 : 1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}


/** rpm's labelCompare; a side without a release matches any release (`1.0` == `1.0-3`), as yum does. */
export function compareRpm(a: string, b: string): number {
  const [ea, va, ra] = splitEvr(a);
  const [eb, vb, rb] = splitEvr(b);
  if (ea !== eb) return sign(ea - eb);
  const c = rpmvercmp(va, vb);
  if (c || ra === undefined || rb === undefined) return c;
  return rpmvercmp(ra, rb);
}

// ---- Salt version specs ----

export type VersionCmp = (a: string, b: string) => number;

const SPEC = /^([<>])?(=)?([^<>=]+)$/;

/** Salt treats a version without an epoch as "any epoch" (ignore_epoch). */
function dropEpoch(installed: string, wanted: string): string {
  return wanted.includes(':') ? installed : installed.replace(/^\d+:/, '');
}

/** Is `spec` ('1.2-3', '1.2*', '>=1.2', '<2') a valid Salt version spec? */
export function validSpec(spec: string): boolean {
  return spec.endsWith('*') ? spec.length > 1 && !/[<>=]/.test(spec) : SPEC.test(spec.trim());
}

/** Does version `v` satisfy Salt's version spec? (salt.states.pkg._fulfills_version_spec) */
export function satisfies(v: string, spec: string, cmp: VersionCmp): boolean {
  const s = spec.trim();
  if (s.endsWith('*')) return dropEpoch(v, s).startsWith(s.slice(0, -1));
  const m = SPEC.exec(s);
  if (!m) return false;
  const want = m[3]!.trim();
  const c = cmp(dropEpoch(v, want), want);
  const op = `${m[1] ?? ''}${m[2] ?? ''}`;
  switch (op) {
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    default:
      return c === 0;
  }
}

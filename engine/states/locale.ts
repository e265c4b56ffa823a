/**
 * Salt's `locale.system` (the system's LANG) and `locale.present` (a compiled locale).
 *
 * locale.system edits the file localectl edits underneath: /etc/default/locale on the Debian
 * family, /etc/locale.conf elsewhere (RedHat, Arch, SUSE with systemd). Other lines (LC_*,
 * comments) stay; the LANG line is replaced in place or appended. Like Salt with systemd, the
 * locale must exist (`locale -a`); under --root the machine's list says nothing about the
 * root, so the check is skipped there (the comment says so).
 *
 * locale.present compiles with localedef, one locale, as Debian's locale-gen does for each line
 * of /etc/locale.gen (locale-gen itself regenerates every locale and cannot target --root).
 * On Debian the line is also uncommented (or added) in /etc/locale.gen, so a later locale-gen
 * (a `locales` upgrade) keeps it. Under --root, localedef --prefix writes the root's archive.
 * The locale sources (/usr/share/i18n) are the machine's, as packages are.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { defineState, StateFailure, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { readIfPresent, writeKeepingPerms } from './system-file.js';
import { exec } from '../run/exec.js';

const I18N = '/usr/share/i18n';
const SUPPORTED = `${I18N}/SUPPORTED`;
const LOCALE_GEN = '/etc/locale.gen';
const ALIAS = '/usr/share/locale/locale.alias';
const ARCHIVE_DIR = '/usr/lib/locale';
const FACT = 'locale:available';

// ---- locale names: language[_territory][.codeset][@modifier][ charmap] ----

export interface LocaleParts {
  language: string;
  territory: string;
  codeset: string;
  modifier: string;
  charmap: string;
}

export function splitLocale(name: string): LocaleParts {
  const cut = (s: string, ch: string): [string, string] => {
    const i = s.indexOf(ch);
    return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
  };
  const [a, charmap] = cut(name.trim(), ' ');
  const [b, modifier] = cut(a, '@');
  const [c, codeset] = cut(b, '.');
  const [language, territory] = cut(c, '_');
  return { language, territory, codeset, modifier, charmap: charmap.trim() };
}

export function joinLocale(p: LocaleParts): string {
  let s = p.language;
  if (p.territory) s += `_${p.territory}`;
  if (p.codeset) s += `.${p.codeset}`;
  if (p.modifier) s += `@${p.modifier}`;
  if (p.charmap) s += ` ${p.charmap}`;
  return s;
}

/** As `locale -a` prints names (Salt's normalize_locale): en_US.UTF-8 -> en_US.utf8, charmap dropped. */
export function normaliseLocale(name: string): string {
  const p = splitLocale(name);
  return joinLocale({ ...p, territory: p.territory.toUpperCase(), codeset: p.codeset.toLowerCase().replaceAll('-', ''), charmap: '' });
}

// ---- what is compiled ----

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await exec(argv);
    return { code: r.code, out: r.stdout, err: r.stderr.trim() || r.stdout.trim() };
  } catch (e) {
    // not installed (ENOENT): a clear failure, not a crash
    throw new StateFailure(`Cannot run ${argv[0]}: ${(e as Error).message}`);
  }
}

/**
 * Locales available to programs: `locale -a` on the machine; under --root, the root's archive
 * (localedef --prefix) plus compiled locale directories (RedHat langpacks install those).
 */
async function listLocales(ctx: RunContext): Promise<string[]> {
  if (!ctx.root) {
    const r = await run(['locale', '-a']);
    if (r.code !== 0) throw new StateFailure(`locale -a failed: ${r.err || `exit code ${r.code}`}`);
    return r.out.split('\n').map((l) => l.trim()).filter(Boolean);
  }
  const r = await run(['localedef', '--prefix', ctx.root, '--list-archive']);
  if (r.code !== 0) throw new StateFailure(`localedef --list-archive failed: ${r.err || `exit code ${r.code}`}`);
  const names = ['C', 'POSIX', ...r.out.split('\n').map((l) => l.trim()).filter(Boolean)];
  const dir = ctx.path(ARCHIVE_DIR);
  for (const d of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (fs.existsSync(path.join(dir, d, 'LC_CTYPE'))) names.push(d);
  }
  return names;
}

async function isAvailable(ctx: RunContext, name: string): Promise<boolean> {
  const want = normaliseLocale(name);
  const list = await ctx.facts.get(`${FACT}:${ctx.root ?? ''}`, () => listLocales(ctx));
  return list.some((l) => normaliseLocale(l) === want);
}

// ---- files ----



/** Where the system locale lives for an os_family, as localectl (or update-locale) writes it. */
function localeFile(ctx: RunContext): string {
  const family = String(ctx.grains.os_family ?? '');
  if (family === 'Debian') return '/etc/default/locale';
  if (['RedHat', 'Arch', 'Suse'].includes(family)) return '/etc/locale.conf';
  throw new StateFailure(`Failed to set system locale: os_family '${family}' is not supported (Debian, RedHat, Arch, Suse are)`);
}

const LANG_LINE = /^(\s*(?:export\s+)?LANG=)(.*)$/;

/** LANG from a locale.conf-style file: the last assignment wins, quotes removed. */
export function currentLang(text: string | undefined): string | undefined {
  let found: string | undefined;
  for (const line of (text ?? '').split('\n')) {
    const m = LANG_LINE.exec(line);
    if (m) found = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return found;
}

/** The file with LANG set: the first LANG line replaced (its quoting kept), later ones dropped. */
export function withLang(text: string | undefined, name: string): string {
  const lines = text === undefined || text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let replaced = false;
  for (const line of lines) {
    const m = LANG_LINE.exec(line);
    if (!m) out.push(line);
    else if (!replaced) {
      const q = /^\s*(["'])/.exec(m[2]!)?.[1] ?? '';
      out.push(`${m[1]}${q}${name}${q}`);
      replaced = true;
    } // a later LANG would override the one just written
  }
  if (!replaced) out.push(`LANG=${name}`);
  return out.join('\n') + '\n';
}

// ---- locale.system ----

const localeName = z
  .string()
  .check(
    z.regex(
      /^[A-Za-z0-9_.@+][A-Za-z0-9_.@+-]*$/,
      "a locale name like 'en_US.UTF-8' (letters, digits, _ . @ + -, not starting with -)",
    ),
  );

const systemArgs = z.object({
  /** the LANG to set, e.g. en_US.UTF-8 */
  name: localeName,
});

interface SystemPlan {
  file: string;
  text: string;
}

const system = defineState<typeof systemArgs, SystemPlan>({
  args: systemArgs,
  async check(ctx, a) {
    const file = localeFile(ctx);
    const text = readIfPresent(ctx.path(file), file);
    if (currentLang(text) === a.name) return { comment: `System locale ${a.name} already set` };
    let note = '';
    if (ctx.root) note = ` (not checked against locale -a under --root)`;
    else if (!(await isAvailable(ctx, a.name))) {
      // an earlier locale.present of this run may generate it; a real run needs it now
      if (!ctx.test) {
        throw new StateFailure(`Failed to set system locale: Locale ${a.name} is not available (locale -a does not list it; generate it first, e.g. with locale.present)`);
      }
      note = ` (locale ${a.name} is not available yet)`;
    }
    return {
      changes: { locale: a.name },
      comment: `System locale ${a.name} needs to be set${note}`,
      plan: { file, text: withLang(text, a.name) },
    };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new Error('locale.system: apply without a plan');
    try {
      await writeKeepingPerms(ctx.path(plan.file), plan.text);
    } catch (e) {
      throw new StateFailure(`Failed to set system locale to ${a.name}: ${(e as Error).message}`);
    }
    return { changes: { locale: a.name }, comment: `Set system locale ${a.name}` };
  },
});

// ---- locale.present ----

const presentArgs = z.object({
  /** e.g. en_US.UTF-8, or with the charmap as /usr/share/i18n/SUPPORTED lists it: 'en_US ISO-8859-1' */
  name: z
    .string()
    .check(
      z.regex(
        /^[A-Za-z0-9_.@+][A-Za-z0-9_.@+-]*( [A-Za-z0-9_.+][A-Za-z0-9_.+-]*)?$/,
        "a locale like 'en_US.UTF-8' or 'en_US.UTF-8 UTF-8' (not starting with -)",
      ),
    ),
});

interface PresentPlan {
  /** the locale as localedef names it (no charmap) */
  locale: string;
  input: string;
  charmap: string;
  /** /etc/locale.gen with the line enabled, when it needs writing */
  localeGen?: string;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** /etc/locale.gen with `line` enabled: a commented copy uncommented, else appended. */
export function withLocaleGenLine(text: string | undefined, line: string): string | undefined {
  const lines = text === undefined || text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const [loc, charmap] = line.split(' ');
  const re = new RegExp(`^\\s*(#\\s*)?${escapeRe(loc!)}\\s+${escapeRe(charmap!)}\\s*$`);
  if (lines.some((l) => re.test(l) && !/^\s*#/.test(l))) return undefined;
  const i = lines.findIndex((l) => re.test(l));
  if (i >= 0) lines[i] = line;
  else lines.push(line);
  return lines.join('\n') + '\n';
}

/** The input localedef compiles from, found as locale-gen finds it. */
function inputFor(p: LocaleParts, locale: string): string {
  if (fs.existsSync(path.join(I18N, 'locales', locale))) return locale;
  const base = `${p.language}${p.territory ? `_${p.territory}` : ''}`;
  return p.modifier ? `${base}@${p.modifier}` : base;
}

async function planPresent(ctx: RunContext, name: string): Promise<PresentPlan> {
  const p = splitLocale(name);
  const locale = joinLocale({ ...p, charmap: '' });
  const fail = (why: string) => new StateFailure(`Failed to generate locale ${name}: ${why}`);
  let charmap = p.charmap || p.codeset;
  if (ctx.grains.os_family === 'Debian') {
    // Debian's list of valid locale/charmap pairs (the lines /etc/locale.gen may enable)
    const supported = readIfPresent(SUPPORTED, SUPPORTED);
    if (supported === undefined) throw fail(`${SUPPORTED} is missing (is the locales package installed?)`);
    const entries = supported.split('\n').map((l) => l.trim().split(/\s+/));
    const hit = entries.find(([l, c]) => l === locale && (p.charmap ? c === p.charmap : true));
    if (!hit) throw fail(`not found in ${SUPPORTED}`);
    charmap = hit[1]!;
  } else {
    const input = inputFor(p, locale);
    if (!fs.existsSync(path.join(I18N, 'locales', input))) {
      throw fail(
        `no locale source ${I18N}/locales/${input}. On RedHat, compiled locales come from glibc-langpack-${p.language} ` +
          `(install that package instead), and localedef needs glibc-locale-source`,
      );
    }
    if (!charmap) throw fail(`give a codeset or charmap, e.g. ${locale}.UTF-8`);
  }
  const cm = path.join(I18N, 'charmaps', charmap);
  if (!fs.existsSync(cm) && !fs.existsSync(`${cm}.gz`)) throw fail(`no charmap ${cm}`);
  const genFile = ctx.path(LOCALE_GEN);
  // Debian always keeps the list (locale-gen rebuilds from it); elsewhere only if there is one
  const manageGen = ctx.grains.os_family === 'Debian' || fs.existsSync(genFile);
  const localeGen = manageGen ? withLocaleGenLine(readIfPresent(genFile, LOCALE_GEN), `${locale} ${charmap}`) : undefined;
  return { locale, input: inputFor(p, locale), charmap, localeGen };
}

const present = defineState<typeof presentArgs, PresentPlan>({
  args: presentArgs,
  async check(ctx, a) {
    if (await isAvailable(ctx, a.name)) return { comment: `Locale ${a.name} is already present` };
    const plan = await planPresent(ctx, a.name);
    return { changes: { locale: a.name }, comment: `Locale ${a.name} needs to be generated`, plan };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new Error('locale.present: apply without a plan');
    const argv = ['localedef'];
    if (ctx.root) {
      argv.push('--prefix', ctx.root);
      fs.mkdirSync(ctx.path(ARCHIVE_DIR), { recursive: true }); // localedef does not create it
    }
    // -c as locale-gen: warnings in the locale source do not stop compilation
    argv.push('-i', plan.input, '-c', '-f', plan.charmap);
    if (fs.existsSync(ALIAS)) argv.push('-A', ALIAS);
    argv.push(plan.locale);
    const r = await run(argv);
    ctx.facts.invalidate(`${FACT}:${ctx.root ?? ''}`);
    // localedef exits non-zero after warnings too: what counts is whether the locale is there
    if (!(await isAvailable(ctx, a.name))) {
      throw new StateFailure(`Failed to generate locale ${a.name}: ${r.err || `localedef exit code ${r.code}`}`);
    }
    if (plan.localeGen !== undefined) {
      try {
        await writeKeepingPerms(ctx.path(LOCALE_GEN), plan.localeGen);
      } catch (e) {
        throw new StateFailure(`Generated locale ${a.name}, but could not enable it in ${LOCALE_GEN}: ${(e as Error).message}`, { locale: a.name });
      }
    }
    return { changes: { locale: a.name }, comment: `Generated locale ${a.name}` };
  },
});

export default { system, present } satisfies StateModule;

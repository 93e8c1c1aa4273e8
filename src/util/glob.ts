/**
 * Glob-like patterns over dotted names (parameters, modules): `*` any run of characters, `?` one
 * character, `[0-3]` / `[!0-3]` classes, `{a,b}` alternatives; everything else literal.
 */
import { InputError } from '../errors.js';

export function globToRegExp(pattern: string): RegExp {
  let re = '';
  let inClass = false;
  let inAlt = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (inClass) {
      if (c === ']') { re += ']'; inClass = false; } else re += c === '\\' ? '\\\\' : c;
      continue;
    }
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      inClass = true;
      re += '[';
      if (pattern[i + 1] === '!') { re += '^'; i++; }
    } else if (c === '{' && !inAlt) { inAlt = true; re += '(?:'; }
    else if (c === '}' && inAlt) { inAlt = false; re += ')'; }
    else if (c === ',' && inAlt) re += '|';
    else re += c.replace(/[.+^$()|\\{}]/g, '\\$&');
  }
  if (inClass || inAlt) throw new InputError(`pattern "${pattern}": unclosed ${inClass ? '[' : '{'}`);
  return new RegExp(`^${re}$`);
}

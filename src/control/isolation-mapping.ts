/**
 * issue 22: a registration's isolation settings to and from the wire. An
 * empty repeated field cannot say "set to nothing", so `disable_tables_set`
 * carries that.
 */
import type { IsolationSettings, IsolationSettings__Output } from './gen/launcher/v1/IsolationSettings.js';
import type { AddRegistrationInput } from './target.js';

type Settings = NonNullable<AddRegistrationInput['isolation']>;

export function toIsolationMessage(s: Settings): IsolationSettings {
  const msg: IsolationSettings = {};
  if (s.mode !== undefined) msg.mode = s.mode;
  if (s.disable_tables !== undefined) {
    msg.disable_tables = [...s.disable_tables];
    msg.disable_tables_set = true;
  }
  return msg;
}

export function fromIsolationMessage(msg: IsolationSettings__Output): Settings {
  const out: Settings = {};
  if (msg.mode !== undefined && msg.mode !== null) out.mode = msg.mode;
  if (msg.disable_tables_set) out.disable_tables = [...msg.disable_tables];
  return out;
}

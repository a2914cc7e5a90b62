/**
 * Every schema migration, oldest first. The list is explicit (no directory scan at run time) so the
 * compiled output carries exactly these migrations, in this order; knex records each `name` in
 * `knex_migrations` and runs those it has not seen. Never rename or reorder an entry once released:
 * add a new file (`0002_….ts`) and append it here.
 */
import type { Knex } from 'knex';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_routing.js';
import * as m0003 from './0003_admin_tokens.js';
import * as m0004 from './0004_calls.js';
import * as m0005 from './0005_user_tokens.js';
import * as m0006 from './0006_messaging.js';
import * as m0007 from './0007_presence.js';
import * as m0008 from './0008_user_sessions.js';
import * as m0009 from './0009_meetings.js';
import * as m0010 from './0010_meeting_participants.js';
import * as m0011 from './0011_meeting_moderation.js';
import * as m0012 from './0012_breakout_rooms.js';
import * as m0013 from './0013_meeting_recordings.js';
import * as m0014 from './0014_meeting_nodes.js';

export interface Migration {
  /** Recorded in knex_migrations; stable forever. */
  readonly name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export const migrations: readonly Migration[] = [
  { name: '0001_initial', up: m0001.up, down: m0001.down },
  { name: '0002_routing', up: m0002.up, down: m0002.down },
  { name: '0003_admin_tokens', up: m0003.up, down: m0003.down },
  { name: '0004_calls', up: m0004.up, down: m0004.down },
  { name: '0005_user_tokens', up: m0005.up, down: m0005.down },
  { name: '0006_messaging', up: m0006.up, down: m0006.down },
  { name: '0007_presence', up: m0007.up, down: m0007.down },
  { name: '0008_user_sessions', up: m0008.up, down: m0008.down },
  { name: '0009_meetings', up: m0009.up, down: m0009.down },
  { name: '0010_meeting_participants', up: m0010.up, down: m0010.down },
  { name: '0011_meeting_moderation', up: m0011.up, down: m0011.down },
  { name: '0012_breakout_rooms', up: m0012.up, down: m0012.down },
  { name: '0013_meeting_recordings', up: m0013.up, down: m0013.down },
  { name: '0014_meeting_nodes', up: m0014.up, down: m0014.down },
];

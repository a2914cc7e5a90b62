import type { Knex } from 'knex';
import type { Logger } from '../../src/log/index.js';
import { SqlAdminTokenRepository } from './admin-tokens.js';
import { SqlCallRepository } from './sql-call-repository.js';
import { SqlContext } from './sql-context.js';
import { SqlDialogRepository } from './sql-dialog-repository.js';
import { SqlHistoryWrites } from './sql-history-writes.js';
import { SqlDomainRepository } from './sql-domain-repository.js';
import { SqlLocationRepository } from './sql-location-repository.js';
import { SqlMessageRepository } from './sql-message-repository.js';
import { SqlPresenceRepository } from './sql-presence-repository.js';
import { SqlMeetingRepository } from './sql-meeting-repository.js';
import type { MeetingRepository } from './meeting-types.js';
import { SqlParticipantRepository } from './sql-participant-repository.js';
import type { ParticipantRepository } from './participant-types.js';
import { SqlModerationRepository } from './sql-moderation-repository.js';
import type { ModerationRepository } from './moderation-types.js';
import { SqlBreakoutRepository } from './sql-breakout-repository.js';
import { SqlPlacementRepository } from './sql-placement-repository.js';
import type { PlacementRepository } from './placement-types.js';
import type { BreakoutRepository } from './breakout-types.js';
import { SqlRecordingRepository } from './sql-recording-repository.js';
import type { RecordingRepository } from './recording-types.js';
import { SqlRoutingRepository } from './sql-routing-repository.js';
import { SqlSubscriberRepository } from './sql-subscriber-repository.js';
import type { MessageRepository } from './message-types.js';
import type { PresenceRepository } from './presence-types.js';
import type { RoutingRepository } from './routing-types.js';
import type {
  AdminTokenRepository, CallRepository, DialogRepository, DomainRepository, HistoryWriteRepository, LocationRepository, SqlStore, StoreDialect,
  SubscriberRepository,
} from './types.js';

/** The SQL store over an open, migrated knex instance; built by openStore(). */
export class KnexStore implements SqlStore {
  readonly domains: DomainRepository;
  readonly subscribers: SubscriberRepository;
  readonly locations: LocationRepository;
  readonly routing: RoutingRepository;
  readonly tokens: AdminTokenRepository;
  readonly calls: CallRepository;
  readonly dialogs: DialogRepository;
  readonly historyWrites: HistoryWriteRepository;
  readonly messages: MessageRepository;
  readonly presence: PresenceRepository;
  readonly meetings: MeetingRepository;
  readonly participants: ParticipantRepository;
  readonly moderation: ModerationRepository;
  readonly breakouts: BreakoutRepository;
  readonly recordings: RecordingRepository;
  readonly placements: PlacementRepository;
  private readonly ctx: SqlContext;
  private closing: Promise<void> | undefined;

  constructor(readonly knex: Knex, readonly dialect: StoreDialect, private readonly log: Logger) {
    this.ctx = new SqlContext(knex, dialect);
    this.domains = new SqlDomainRepository(this.ctx);
    this.subscribers = new SqlSubscriberRepository(this.ctx);
    this.locations = new SqlLocationRepository(this.ctx);
    this.routing = new SqlRoutingRepository(this.ctx);
    this.tokens = new SqlAdminTokenRepository(this.ctx);
    this.historyWrites = new SqlHistoryWrites(this.ctx);
    this.calls = new SqlCallRepository(this.ctx);
    this.dialogs = new SqlDialogRepository(this.ctx);
    this.messages = new SqlMessageRepository(this.ctx);
    this.presence = new SqlPresenceRepository(this.ctx);
    this.meetings = new SqlMeetingRepository(this.ctx);
    this.participants = new SqlParticipantRepository(this.ctx);
    this.moderation = new SqlModerationRepository(this.ctx);
    this.breakouts = new SqlBreakoutRepository(this.ctx);
    this.recordings = new SqlRecordingRepository(this.ctx);
    this.placements = new SqlPlacementRepository(this.ctx);
  }

  /** Idempotent; repository calls made afterwards throw STORE_ERR_CLOSED. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.ctx.close();
      this.closing = this.knex.destroy().then(() => this.log.debug('store closed'));
    }
    return this.closing;
  }
}

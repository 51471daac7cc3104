export {
  Switchboard,
  type SwitchboardOptions,
  type ApiPublishOptions,
  type ApiTarget,
  type HistoryOptions,
  type PublicPublication,
  type PublicClientInfo,
} from './node.js';
export { startServer, type StandaloneServer } from './server.js';
export { httpApiPlugin } from './api/http.js';
export { adminPlugin } from './api/admin.js';
export { executeApiCommand, type ApiReply } from './api/executor.js';
export { loadConfig, parseDuration, ConfigError, type Config } from './config/load.js';
export {
  Errors,
  Disconnects,
  ReplyError as SwitchboardError,
  DisconnectError,
  type ProtocolError,
  type Disconnect,
} from './protocol/codes.js';
export type { ClientInfo, Publication, StreamPosition } from './protocol/types.js';
export type {
  Engine,
  EngineHandlers,
  EngineStartOptions,
  Broker,
  HistoryStore,
  PresenceManager,
  PresenceStore,
  NodeRegistry,
  SharedLimiter,
  RevocationStore,
  TokenIdentity,
  ControlMessage,
  NodeInfo,
  ConnectionDescription,
  WebhookOutbox,
  OutboxEntry,
  ChannelOccupancy,
} from './engine/types.js';
export { EngineUnavailableError, type UnavailableKind } from './engine/errors.js';
export { MemoryEngine } from './engine/memory/engine.js';
export type * from './session/hooks.js';
export { VERSION } from './version.js';
export { WebhookHeaders, signWebhook, verifyWebhook } from './webhooks/sign.js';
export type { WebhookEvent, WebhookEventType } from './webhooks/event.js';

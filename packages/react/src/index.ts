export {
  SwitchboardProvider,
  useSwitchboard,
  type ConnectionProblem,
  type ConnectionState,
  type SwitchboardContextValue,
  type SwitchboardProviderProps,
} from './context.js';
export {
  useSubscription,
  type SubscriptionView,
  type SubscriptionProblem,
  type SubscriptionStateName,
  type UseSubscriptionOptions,
} from './subscription.js';
export { usePresence, type PresenceView } from './presence.js';
export { useMap, type MapView, type UseMapOptions } from './map.js';
export {
  useLock,
  useLockHolders,
  type Lease,
  type Holder,
  type LockProblem,
  type LockState,
  type LockView,
  type UseLockOptions,
} from './locks.js';
export { useUserStatus, type UserStatus, type UserStatusView } from './status.js';

export { createProxyHandler } from './proxy-handler.js';
export type {
  BudgetAdmission,
  BudgetTicket,
  ProxyBudgetGate,
  ProxyHandler,
  ProxyOptions,
  ProxyRecordSink,
  ProxyStats,
  RouteAuthorization,
} from './proxy-options.js';
export { isProxyTarget } from './resolve-target.js';

import type { Budget, BudgetCostKind, BudgetPeriod, BudgetScope } from '@tokenwise/storage';

const COST_KIND_TEXT: Record<BudgetCostKind, string> = {
  api: 'API spend',
  api_equivalent: 'API-equivalent cost of subscription traffic',
};

const SCOPE_TEXT: Record<BudgetScope, string> = {
  workspace: 'the whole workspace',
  device: 'one device',
  user: 'one person',
};

const PERIOD_TEXT: Record<BudgetPeriod, string> = { day: 'day', week: 'week', month: 'month' };

/** Describe what a budget counts, e.g. "API spend per day, the whole workspace"; periods are UTC. */
export function describeBudget(budget: Pick<Budget, 'costKind' | 'period' | 'scope'>): string {
  return `${COST_KIND_TEXT[budget.costKind]} per UTC ${PERIOD_TEXT[budget.period]}, ${SCOPE_TEXT[budget.scope]}`;
}

/** Format USD for people: cents, or four decimals below one cent so a small spend does not read as $0.00. */
export function formatUsd(usd: number): string {
  const sign = usd < 0 ? '-' : '';
  const value = Math.abs(usd);
  return `${sign}$${value > 0 && value < 0.01 ? value.toFixed(4) : value.toFixed(2)}`;
}

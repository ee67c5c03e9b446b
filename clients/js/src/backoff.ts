/** Reconnect delays: exponential, capped, with jitter (pure: the random source is a parameter). */

export interface BackoffOptions {
  /** First delay, in milliseconds. Default 500. */
  minReconnectDelay?: number;
  /** Largest delay, in milliseconds. Default 20,000. */
  maxReconnectDelay?: number;
  /** Growth factor between attempts. Default 2. */
  reconnectFactor?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = {
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  reconnectFactor: 2,
};

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry).
 *
 * "Equal jitter": half the exponential step is fixed, half is random, so that a deploy's
 * thousands of clients spread out without any of them retrying at once in a tight loop.
 * The result is always within [min/2, max].
 */
export function reconnectDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { minReconnectDelay: min, maxReconnectDelay: max, reconnectFactor: factor } = {
    ...BACKOFF_DEFAULTS,
    ...options,
  };
  const step = Math.min(max, min * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A short random delay for a prompt reconnect (server restarting, too slow): [0, min). */
export function promptDelay(options: BackoffOptions = {}, random: () => number = Math.random): number {
  const min = options.minReconnectDelay ?? BACKOFF_DEFAULTS.minReconnectDelay;
  return Math.round(random() * min);
}

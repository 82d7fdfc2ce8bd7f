/**
 * The one-sided Clopper–Pearson upper confidence bound of a binomial proportion: the largest p under which seeing
 * at most `k` successes in `n` trials still has probability ≥ alpha. Exact (no normal approximation), so it holds
 * for the few samples a shadow stream collects at first. Found by bisection on the binomial CDF, computed in log
 * space (no underflow at n in the thousands).
 */
export function clopperPearsonUpper(k: number, n: number, alpha = 0.05): number {
  if (!(Number.isInteger(k) && Number.isInteger(n) && k >= 0 && k <= n))
    throw new RangeError(`need 0 ≤ k ≤ n: ${k}/${n}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1): ${alpha}`);
  if (k === n) return 1;
  // P(X ≤ k) falls as p rises: find where it crosses alpha.
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 60 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** P(X ≤ k) for X ~ Binomial(n, p), summed in log space. */
export function binomialCdf(k: number, n: number, p: number): number {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  const logRatio = Math.log(p) - Math.log1p(-p);
  let logPmf = n * Math.log1p(-p); // P(X = 0)
  let max = logPmf;
  const logs = [logPmf];
  for (let i = 0; i < k; i++) {
    logPmf += Math.log((n - i) / (i + 1)) + logRatio;
    logs.push(logPmf);
    if (logPmf > max) max = logPmf;
  }
  const sum = logs.reduce((s, l) => s + Math.exp(l - max), 0);
  return Math.min(1, Math.exp(max + Math.log(sum)));
}

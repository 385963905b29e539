/**
 * Money: integer femto-dollars (1e-15 USD) in every sum, decimals only at the edges.
 *
 * The catalog prices a turn in femto-dollars (see catalog/cost.ts). A cost handed to the user
 * is a `number` of dollars, the double nearest to the exact decimal. Adding such numbers in
 * floating point drifts (`0.0001 + 0.0002 = 0.00030000000000000003`), so every total is kept
 * as a BigInt count of femto-dollars and turned into dollars once, when it is handed out.
 *
 * The rounding rule, the same everywhere: a dollar amount becomes femto-dollars by reading its
 * decimal digits (the shortest form that names the double, as `String(n)` prints it), rounded
 * half up at the fifteenth decimal; femto-dollars become a number by parsing the exact decimal
 * (one correctly rounded conversion); and printed amounts are rounded half up to the digits shown.
 */

/** Femto-dollars per dollar. */
export const FEMTO_PER_DOLLAR = 1_000_000_000_000_000n;
const DECIMALS = 15;

/** The exact decimal of `femto` femto-dollars, in dollars: 821400000000n -> '0.0008214'. */
export function femtoToDecimal(femto: bigint): string {
  const negative = femto < 0n;
  const abs = negative ? -femto : femto;
  const whole = abs / FEMTO_PER_DOLLAR;
  const frac = (abs % FEMTO_PER_DOLLAR).toString().padStart(DECIMALS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac === '' ? '' : `.${frac}`}`;
}

const EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** Dollars as a number: the double nearest to the exact decimal of `femto`. */
export function femtoToDollars(femto: bigint): number {
  // Below 2^53 both operands are exact doubles and IEEE division rounds once: the same double
  // as parsing the decimal, ten times faster.
  if (femto <= EXACT && femto >= -EXACT) return Number(femto) / 1e15;
  return Number(femtoToDecimal(femto));
}

/** A dollar amount (a finite number) as femto-dollars, from its decimal digits, half up at 1e-15. */
export function dollarsToFemto(dollars: number): bigint {
  if (!Number.isFinite(dollars)) throw new RangeError(`not a dollar amount: ${dollars}`);
  // Free replies (local models, every response-cache hit) skip the digits.
  if (dollars === 0) return 0n;
  const negative = dollars < 0;
  // String() gives the shortest digits that name the double, e.g. '0.0008214' or '1e-7'.
  const text = String(Math.abs(dollars));
  const [mantissa = '0', exponentText] = text.split('e');
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  const [intPart = '0', fracPart = ''] = mantissa.split('.');
  const digits = intPart + fracPart;
  // value = digits * 10^(exponent - fracPart.length); femto = value * 10^15.
  const shift = exponent - fracPart.length + DECIMALS;
  let femto: bigint;
  if (shift >= 0) femto = BigInt(digits) * 10n ** BigInt(shift);
  else {
    const divisor = 10n ** BigInt(-shift);
    const n = BigInt(digits);
    femto = n / divisor + ((n % divisor) * 2n >= divisor ? 1n : 0n);
  }
  return negative ? -femto : femto;
}

/** A cost that may be unknown, as femto-dollars (null stays null). */
export function costToFemto(cost: number | null | undefined): bigint | null {
  return cost === null || cost === undefined ? null : dollarsToFemto(cost);
}

/**
 * Sum of costs, exactly. Unknown costs (null) are left out; the sum is null only when every
 * cost is unknown and there was at least one (nothing priced at all), and 0 for no costs.
 */
export function sumCosts(costs: Iterable<number | null | undefined>): number | null {
  let total = 0n;
  let known = false;
  let any = false;
  for (const c of costs) {
    any = true;
    if (c === null || c === undefined) continue;
    known = true;
    total += dollarsToFemto(c);
  }
  if (any && !known) return null;
  return femtoToDollars(total);
}

/**
 * Dollars for display, rounded half up to `decimals` places: `$0.000821`. Amounts of a cent or
 * more show 4 decimals, smaller ones 6, so a cheap turn does not print as `$0.0000`.
 */
export function formatDollars(femto: bigint, decimals?: number): string {
  if (femto === 0n) return '$0';
  const places = decimals ?? (femto >= FEMTO_PER_DOLLAR / 100n || femto <= -FEMTO_PER_DOLLAR / 100n ? 4 : 6);
  const negative = femto < 0n;
  const abs = negative ? -femto : femto;
  const unit = 10n ** BigInt(DECIMALS - places);
  const rounded = abs / unit + ((abs % unit) * 2n >= unit ? 1n : 0n);
  const scale = 10n ** BigInt(places);
  const whole = rounded / scale;
  const frac = (rounded % scale).toString().padStart(places, '0');
  return `${negative ? '-' : ''}$${whole}${places > 0 ? `.${frac}` : ''}`;
}

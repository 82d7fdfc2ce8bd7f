/**
 * Commander parsers for the numeric options of the project's CLIs (scene generator, tools, benchmarks). `Number`
 * alone would let "abc" through as NaN (a NaN seed acts as seed 0, a NaN count as no work); these refuse it with
 * commander's own error, naming the option.
 */
import { InvalidArgumentError } from "commander";

/** An integer in [min, max]; the default max is the largest 32-bit unsigned (the scene generator's seed range). */
export const integer =
  (min: number, max = 2 ** 32 - 1) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };

/** A finite number in [min, max]. */
export const decimal =
  (min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    }
    return n;
  };

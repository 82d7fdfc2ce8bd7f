import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import * as spend from "./spend.js";

let objects = 0;
/** The storage of a fresh key's object (its constructor creates the tables), for one test. */
const inFreshAccount = <T>(run: (sql: SqlStorage) => T): Promise<T> =>
  runInDurableObject(env.ACCOUNTS.get(env.ACCOUNTS.idFromName(`spend-test-${++objects}`)), (_account, state) =>
    run(state.storage.sql),
  );

describe("the spend", () => {
  it("is seeded once, from the first seed it is read with, then only grows by charges", async () => {
    expect(
      await inFreshAccount((sql) => {
        const first = spend.readSpend(sql, 5);
        const again = spend.readSpend(sql, 900); // D1's spend trails; a later seed must not overwrite the truth
        spend.addToSpend(sql, 3);
        return [first, again, spend.readSpend(sql, 0)];
      }),
    ).toEqual([5, 5, 8]);
  });
});

describe("charges", () => {
  it("records a request id once: a retried charge under the same id is not counted again", async () => {
    expect(
      await inFreshAccount((sql) => [
        spend.recordCharge(sql, "req_a", 100, 0),
        spend.recordCharge(sql, "req_a", 999, 1),
        spend.chargeOf(sql, "req_a"),
        spend.chargeOf(sql, "req_b"),
      ]),
    ).toEqual([true, false, 100, undefined]);
  });

  it("forgets a charge on request (a refund) so the id may be charged again", async () => {
    expect(
      await inFreshAccount((sql) => {
        spend.recordCharge(sql, "req_a", 100, 0);
        spend.forgetCharge(sql, "req_a");
        return [spend.chargeOf(sql, "req_a"), spend.recordCharge(sql, "req_a", 50, 1)];
      }),
    ).toEqual([undefined, true]);
  });

  it("remembers ids for spend.CHARGE_MEMORY_MS, then forgets them", async () => {
    expect(
      await inFreshAccount((sql) => {
        spend.recordCharge(sql, "old", 1, 0);
        spend.recordCharge(sql, "recent", 2, 10);
        spend.forgetOldCharges(sql, spend.CHARGE_MEMORY_MS + 5); // "old" is past the memory; "recent" is not
        return [spend.chargeOf(sql, "old"), spend.chargeOf(sql, "recent")];
      }),
    ).toEqual([undefined, 2]);
  });
});

describe("holds", () => {
  /** Places each [request id, nanos, expiry] hold in turn. */
  const hold = (sql: SqlStorage, ...holds: [string, number, number][]) => {
    for (const [requestId, nanos, expiresAt] of holds) spend.placeHold(sql, requestId, nanos, expiresAt);
  };

  it("sums what the requests in flight may cost, one hold per request id (a second hold replaces the first)", async () => {
    expect(
      await inFreshAccount((sql) => {
        hold(sql, ["req_a", 100, 1000], ["req_b", 30, 1000], ["req_a", 70, 1000]);
        return spend.heldNanos(sql, 0);
      }),
    ).toBe(100);
  });

  it("drops a hold when released, and a hold nobody released once it lapses", async () => {
    expect(
      await inFreshAccount((sql) => {
        hold(sql, ["released", 100, 1000], ["lapsing", 30, 500], ["live", 7, 501]);
        spend.releaseHold(sql, "released");
        return [spend.heldNanos(sql, 499), spend.heldNanos(sql, 500), spend.heldNanos(sql, 501)];
      }),
    ).toEqual([37, 7, 0]);
  });
});

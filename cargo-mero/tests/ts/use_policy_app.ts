// Uses the bindings `cargo mero build` generates for runtime/fixtures/policy-app
// (copied next to this file as policy-app.ts by tests/bindings.rs). It must
// compile with `tsc --strict`, and every `@ts-expect-error` line must be an
// error, or tsc fails on the unused directive. Run, it prints what the
// bindings asked the (fake) client to do.
import {
  APP_HASH,
  APP_NAME,
  Ledger,
  LedgerErrorCodes,
  LedgerEventKinds,
  asLedgerEvent,
  isLedgerError,
  isNoteError,
  type LedgerEvent,
  type MeroCaller,
} from "./policy-app";

type Call = { rpc: "execute" | "query"; method: string; args?: Record<string, unknown> };
const calls: Call[] = [];

/** A client that records calls; `withdraw` fails as the node would. */
const caller: MeroCaller = {
  execute<T>(method: string, args?: Record<string, unknown>): Promise<T> {
    calls.push({ rpc: "execute", method, args });
    if (method === "withdraw") {
      const e = Object.assign(new Error("ann holds 5, not 9"), {
        kind: "Insufficient",
        code: 1001,
        data: { account: "ann", balance: 5, wanted: 9 },
      });
      return Promise.reject(e);
    }
    return Promise.resolve(7 as T);
  },
  query<T>(method: string, args?: Record<string, unknown>): Promise<T> {
    calls.push({ rpc: "query", method, args });
    return Promise.resolve(3 as T);
  },
};

/** Wrong uses, each refused by tsc (never run). */
export async function wrongUses(ledger: Ledger): Promise<void> {
  // @ts-expect-error: an amount is a number
  void ledger.deposit({ account: "ann", amount: "5" });
  // @ts-expect-error: `account` is required
  void ledger.balance({});
  // @ts-expect-error: no such parameter
  void ledger.balance({ account: "ann", extra: 1 });
  // @ts-expect-error: a balance is a number, not a string
  const s: string = await ledger.balance({ account: "ann" });
  // @ts-expect-error: handlers are for nodes, not clients
  void ledger.on_deposited({ account: "ann", amount: 1 });
  // @ts-expect-error: private methods are not in the bindings
  void ledger.freeze();
  // @ts-expect-error: init ran when the context was created
  void ledger.init();
  void s;
}

async function use(): Promise<string[]> {
  const seen: string[] = [];
  const ledger = new Ledger(caller);
  const balance: number = await ledger.deposit({ account: "ann", amount: 5 });
  seen.push(`deposit -> ${balance}`);
  await ledger.note({ account: "ann", text: "hi" });
  const b: number = await ledger.balance({ account: "ann" });
  seen.push(`balance -> ${b}`);
  const notes: Promise<string[]> = ledger.notes({ account: "ann" });
  const receipts: Promise<[string, number][]> = ledger.receipts();
  const poked: Promise<boolean> = ledger.poke({ account: "ann" });
  const refused: Promise<void> = ledger.refuse();
  await Promise.all([notes, receipts, poked, refused]);

  try {
    await ledger.withdraw({ account: "ann", amount: 9 });
  } catch (e) {
    if (isLedgerError(e)) {
      switch (e.kind) {
        case "Insufficient": {
          const { account, balance, wanted }: { account: string; balance: number; wanted: number } = e.data;
          seen.push(`withdraw failed: ${e.kind} ${e.code} ${account} ${balance} ${wanted}`);
          break;
        }
        case "NoAccount": {
          const account: string = e.data;
          seen.push(account);
          break;
        }
        case "NotPositive": {
          const n: number = e.data;
          seen.push(String(n));
          break;
        }
        case "Frozen": {
          const nothing: null = e.data;
          seen.push(String(nothing));
          break;
        }
        default: {
          const none: never = e;
          seen.push(String(none));
        }
      }
    }
    // The same kind under another code is not a LedgerError; NoteError is another enum.
    seen.push(`wrong code: ${isLedgerError({ kind: "Insufficient", code: 1, data: null })}`);
    seen.push(`note error: ${isNoteError(e)}`);
    if (isNoteError(e) && e.kind === "TooLong") {
      const max: number = e.data.max;
      void max;
    }
  }

  const item = { id: 12, kind: "Deposited", data: { account: "bob", amount: 3 }, local: false };
  const ev = asLedgerEvent(item);
  if (ev && ev.kind === "Deposited") {
    const account: string = ev.data.account;
    const amount: number = ev.data.amount;
    const local: boolean = ev.local;
    seen.push(`event: ${account} ${amount} ${local}`);
  }
  seen.push(`other event: ${asLedgerEvent({ kind: "Withdrawn", data: null })}`);
  const kind: LedgerEvent["kind"] = LedgerEventKinds[0];
  // @ts-expect-error: not an event of this app
  const bad: LedgerEvent["kind"] = "Withdrawn";
  void bad;
  const code: 1001 = LedgerErrorCodes.Insufficient;
  seen.push(`${kind} ${code} ${APP_NAME} ${APP_HASH.length > 0}`);
  return seen;
}

use().then(
  (seen) => console.log(JSON.stringify({ calls, seen })),
  (e) => console.log(JSON.stringify({ error: String(e) })),
);

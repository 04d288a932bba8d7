// A wrong use of the policy-app bindings, without `@ts-expect-error`:
// tests/bindings.rs checks that tsc --strict refuses it.
import { Ledger, type MeroCaller } from "./policy-app";

declare const caller: MeroCaller;
const ledger = new Ledger(caller);
export const wrong = ledger.deposit({ account: "ann", amount: "five" });

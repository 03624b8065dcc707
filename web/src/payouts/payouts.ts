// The sellers' money in words: ledger entry kinds, signed amounts, the holding period, and
// the paging both payout pages share.
import { useState } from "react";
import type { Money, Schemas } from "../api/client";
import { moneyAmount } from "../ui/kit";

export type LedgerEntry = Schemas["LedgerEntry"];
export type Payout = Schemas["Payout"];
export type CurrencyBalance = Schemas["CurrencyBalance"];

const KIND_WORDS: Record<Schemas["LedgerEntryKind"], string> = {
  LEDGER_ENTRY_KIND_UNSPECIFIED: "Other",
  LEDGER_ENTRY_KIND_SALE: "Sale",
  LEDGER_ENTRY_KIND_COMMISSION: "Commission",
  LEDGER_ENTRY_KIND_REFUND: "Refund",
  LEDGER_ENTRY_KIND_COMMISSION_REFUND: "Commission returned",
  LEDGER_ENTRY_KIND_PAYOUT: "Payout",
};

export function kindWords(kind: Schemas["LedgerEntryKind"] | undefined): string {
  return KIND_WORDS[kind ?? "LEDGER_ENTRY_KIND_UNSPECIFIED"];
}

/** A ledger amount with its sign always shown ("+$36.00", "-$4.00"), so credits and debits read apart. */
export function signedMoney(money: Money | undefined): string {
  if (!money?.currencyCode) return "";
  return new Intl.NumberFormat("en", { style: "currency", currency: money.currencyCode, signDisplay: "exceptZero" }).format(moneyAmount(money));
}

/** The holding period in the largest whole unit that fits: "7 days", "2 seconds". */
export function holdWords(seconds: string | number | undefined): string {
  const total = Number(seconds ?? 0);
  const units: [number, string][] = [
    [86_400, "day"],
    [3_600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  for (const [size, name] of units) {
    if (total >= size && total % size === 0) {
      const n = total / size;
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  return `${total} seconds`;
}

/** The page tokens before the current page: "Previous" pops, "Next" pushes. */
export function usePages() {
  const [tokens, setTokens] = useState<string[]>([]);
  return {
    pageToken: tokens[tokens.length - 1],
    first: tokens.length === 0,
    previous: () => setTokens((t) => t.slice(0, -1)),
    next: (token: string) => setTokens((t) => [...t, token]),
    reset: () => setTokens([]),
  };
}

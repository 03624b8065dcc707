// Shipping rates and tax rates in the words and numbers people type: amounts as decimal text
// ("4.50", "" for none) and basis points as a percentage ("19" or "7.5" for 1900 or 750).
import type { Money, Schemas } from "../api/client";
import { moneyAmount, toMoney } from "../ui/kit";

export type ShippingProfile = Schemas["ShippingProfile"];
export type ShippingRate = Schemas["ShippingRate"];
export type TaxRate = Schemas["TaxRate"];

/** One rate as the form holds it: every amount as typed, "" when unset. */
export interface RateDraft {
  countryCode: string;
  flatFee: string;
  perItemFee: string;
  freeOver: string;
}

export const EMPTY_RATE: RateDraft = { countryCode: "", flatFee: "", perItemFee: "", freeOver: "" };

function amountText(money: Money | undefined): string {
  return money?.currencyCode ? moneyAmount(money).toFixed(2) : "";
}

export function rateDraft(rate: ShippingRate | undefined): RateDraft {
  return {
    countryCode: rate?.countryCode ?? "",
    flatFee: amountText(rate?.flatFee),
    perItemFee: amountText(rate?.perItemFee),
    freeOver: amountText(rate?.freeOver),
  };
}

function amount(text: string, currency: string): Money | undefined {
  return text.trim() === "" ? undefined : toMoney(text.trim(), currency);
}

export function rateOf(draft: RateDraft, currency: string): ShippingRate {
  return {
    countryCode: draft.countryCode.trim().toUpperCase() || undefined,
    flatFee: amount(draft.flatFee, currency),
    perItemFee: amount(draft.perItemFee, currency),
    freeOver: amount(draft.freeOver, currency),
  };
}

/** A default rate with no amount at all means "no default": those countries ship for free. */
export function isBlank(draft: RateDraft): boolean {
  return !draft.flatFee.trim() && !draft.perItemFee.trim() && !draft.freeOver.trim();
}

/** 1900 basis points -> "19%", 750 -> "7.5%". */
export function percent(basisPoints: number | undefined): string {
  return `${((basisPoints ?? 0) / 100).toLocaleString("en", { maximumFractionDigits: 2 })}%`;
}

/** "19" or "7.5" (percent) -> 1900 or 750 basis points; NaN when it is not a number. */
export function basisPointsOf(percentText: string): number {
  const text = percentText.trim().replace(/%$/, "");
  if (text === "") return Number.NaN;
  return Math.round(Number(text) * 100);
}

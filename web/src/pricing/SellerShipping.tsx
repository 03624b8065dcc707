// "Shipping" in the seller console: the seller's shipping profile (GET and PATCH
// /v1/sellers/me/shippingProfile): one currency, a default rate, and rates by destination
// country, each a flat fee per order, a fee per item, and a free-over threshold.
import { useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { ErrorNote, Status, dateTime, useAction, useLoad } from "../ui/kit";
import { EMPTY_RATE, isBlank, rateDraft, rateOf, type RateDraft, type ShippingProfile } from "./pricing";

export function SellerShipping() {
  const profile = useLoad(() => call(api.GET("/v1/sellers/me/shippingProfile")), []);
  // Kept here: a save remounts the form with the profile as the server now has it.
  const [saved, setSaved] = useState(false);
  return (
    <section>
      <h1>Shipping</h1>
      <p className="muted">
        What you charge to ship your part of an order, by the buyer&apos;s country. Countries without a rate of their own use the default rate; with no default, they ship for free. Tax is
        added by the marketplace on your items and shipping together.
      </p>
      <ErrorNote error={profile.error} />
      {profile.loading && !profile.data ? <Status>Loading your shipping rates…</Status> : null}
      {saved ? <Status>Your shipping rates are saved.</Status> : null}
      {profile.data ? <ProfileForm
          key={profile.data.updateTime ?? "new"}
          profile={profile.data}
          onSaving={() => setSaved(false)}
          onSaved={() => {
            setSaved(true);
            profile.reload();
          }}
        /> : null}
    </section>
  );
}

function ProfileForm({ profile, onSaving, onSaved }: { profile: ShippingProfile; onSaving: () => void; onSaved: () => void }) {
  const [currency, setCurrency] = useState(profile.currencyCode || "USD");
  const [fallback, setFallback] = useState<RateDraft>(rateDraft(profile.defaultRate));
  const [rates, setRates] = useState<RateDraft[]>((profile.countryRates ?? []).map(rateDraft));
  const save = useAction(async () => {
    const code = currency.trim().toUpperCase();
    await call(
      api.PATCH("/v1/sellers/me/shippingProfile", {
        body: {
          currencyCode: code,
          defaultRate: isBlank(fallback) ? undefined : rateOf({ ...fallback, countryCode: "" }, code),
          countryRates: rates.map((r) => rateOf(r, code)),
        },
      }),
    );
    onSaved();
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSaving();
    void save.run();
  };
  const change = (index: number, next: RateDraft) => setRates((all) => all.map((r, i) => (i === index ? next : r)));
  return (
    <form onSubmit={submit} aria-label="Shipping rates">
      <label className="field inline-field">
        <span>Currency</span>
        <input value={currency} onChange={(e) => setCurrency(e.target.value)} required minLength={3} maxLength={3} pattern="[A-Za-z]{3}" aria-describedby="currency-hint" />
        <small id="currency-hint">Three letters, such as USD: the currency of your listings. Every amount below is in it.</small>
      </label>
      <fieldset>
        <legend>Default rate (countries without their own)</legend>
        <RateFields draft={fallback} onChange={setFallback} />
      </fieldset>
      <h2>Rates by country</h2>
      {rates.length === 0 ? <p>No country has a rate of its own.</p> : null}
      {rates.map((rate, index) => (
        <fieldset key={index} data-country={rate.countryCode}>
          <legend>Country rate {index + 1}</legend>
          <label className="field inline-field">
            <span>Country code</span>
            <input
              value={rate.countryCode}
              onChange={(e) => change(index, { ...rate, countryCode: e.target.value })}
              required
              minLength={2}
              maxLength={2}
              pattern="[A-Za-z]{2}"
              title="Two letters, such as DE"
            />
          </label>
          <RateFields draft={rate} onChange={(next) => change(index, next)} />
          <button type="button" className="link" onClick={() => setRates((all) => all.filter((_, i) => i !== index))}>
            Remove the rate for {rate.countryCode || `country rate ${index + 1}`}
          </button>
        </fieldset>
      ))}
      <p>
        <button type="button" className="secondary" onClick={() => setRates((all) => [...all, { ...EMPTY_RATE }])}>
          Add a country
        </button>
      </p>
      <ErrorNote error={save.error} />
      {profile.updateTime ? <p className="muted">Last changed {dateTime(profile.updateTime)}.</p> : null}
      <button type="submit" disabled={save.busy}>
        {save.busy ? "Saving…" : "Save the shipping rates"}
      </button>
    </form>
  );
}

function RateFields({ draft, onChange }: { draft: RateDraft; onChange: (next: RateDraft) => void }) {
  const money = (name: "flatFee" | "perItemFee" | "freeOver", text: string, hint: string) => (
    <label className="field">
      <span>{text}</span>
      <input
        type="number"
        inputMode="decimal"
        min={0}
        step="0.01"
        value={draft[name]}
        onChange={(e) => onChange({ ...draft, [name]: e.target.value })}
      />
      <small>{hint}</small>
    </label>
  );
  return (
    <div className="inline">
      {money("flatFee", "Flat fee per order", "Charged once per order; empty is none")}
      {money("perItemFee", "Fee per item", "Charged for each unit; empty is none")}
      {money("freeOver", "Free over", "Shipping is free from this item subtotal; empty is never free")}
    </div>
  );
}

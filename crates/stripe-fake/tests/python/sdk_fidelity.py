"""Drives stripe-fake with the official Python SDK (`pip install stripe`) and checks
fields against Stripe's API reference. Run: python3 sdk_fidelity.py
(STRIPE_FAKE_BIN points at the binary; default: the shared release target)."""

import os
import socket
import subprocess
import sys
import time

import stripe

BIN = os.environ.get("STRIPE_FAKE_BIN", "/root/.cache/billing-target/release/stripe-fake")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    port = free_port()
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--rate-limit", "0",
         "--seed-customers", "30", "--seed", "5", "--now", "1767225600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    passed = failed = 0
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        client = stripe.StripeClient("sk_test_fake", base_addresses={"api": base, "connect": base})

        def check(name, cond):
            nonlocal passed, failed
            if cond:
                passed += 1
            else:
                failed += 1
                print("FAIL", name)

        # Lists and auto-pagination through the SDK.
        custs = list(client.v1.customers.list(params={"limit": 7}).auto_paging_iter())
        check("30 customers via auto-pagination", len(custs) == 30)
        c = custs[0]
        check("customer object", c.object == "customer" and c.id.startswith("cus_") and c.livemode is False)
        check("customer invoice_settings", "default_payment_method" in c.invoice_settings)
        subs = client.v1.subscriptions.list(params={"status": "all", "limit": 100,
                                                 "expand": ["data.default_payment_method", "data.customer"]})
        check("subscriptions listed", len(subs.data) > 0)
        s = subs.data[0]
        item = s["items"].data[0]
        check("item periods (basil)", isinstance(item.current_period_start, int) and item.current_period_end > item.current_period_start)
        check("item price object", item.price.object == "price" and item.price.recurring.interval in ("day", "week", "month", "year"))
        check("expanded customer", s.customer.object == "customer")
        check("status value", s.status in ("incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused"))
        invs = client.v1.invoices.list(params={"limit": 10, "expand": ["data.lines"]})
        inv = invs.data[0]
        for f in ("amount_due", "amount_paid", "amount_remaining", "attempt_count", "attempted", "status_transitions", "next_payment_attempt", "period_start", "period_end", "billing_reason"):
            check(f"invoice.{f}", f in inv)
        check("invoice parent", inv.parent.type == "subscription_details" and inv.parent.subscription_details.subscription.startswith("sub_"))
        check("invoice lines", inv.lines.object == "list" and inv.lines.data[0].object == "line_item")
        ch = client.v1.charges.list(params={"limit": 5}).data[0]
        check("charge fields", ch.object == "charge" and ch.status in ("succeeded", "failed") and "outcome" in ch)
        pm = client.v1.payment_methods.list(params={"limit": 1}).data[0]
        check("card fields", pm.type == "card" and set(["brand", "last4", "exp_month", "exp_year"]) <= set(pm.card.to_dict().keys()))

        # Errors map to the SDK's exception classes.
        try:
            client.v1.customers.retrieve("cus_missing")
            check("404 raises", False)
        except stripe.InvalidRequestError as e:
            check("404 resource_missing", e.http_status == 404 and e.code == "resource_missing")
        try:
            stripe.StripeClient("sk_test_nope", base_addresses={"api": base}).v1.customers.list()
            check("401 raises", False)
        except stripe.AuthenticationError as e:
            check("401 AuthenticationError", e.http_status == 401)
        try:
            stripe.StripeClient("rk_test_fake", base_addresses={"api": base}).v1.customers.create(params={"email": "x@y.z"})
            check("403 raises", False)
        except stripe.PermissionError as e:
            check("403 PermissionError", e.http_status == 403)
        try:
            client.v1.customers.list(params={"limit": 1000})
            check("limit raises", False)
        except stripe.InvalidRequestError as e:
            check("400 limit", e.http_status == 400 and e.param == "limit")

        # Build a scenario through the SDK.
        cus = client.v1.customers.create(params={"email": "sdk@acme.test", "name": "Acme SDK", "metadata": {"cscx_account_id": "cscx_x"}})
        pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
        client.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
        prod = client.v1.products.create(params={"name": "SDK plan"})
        price = client.v1.prices.create(params={"product": prod.id, "currency": "usd", "unit_amount": 1999, "recurring": {"interval": "month"}})
        coupon = client.v1.coupons.create(params={"percent_off": 25, "duration": "forever"})
        sub = client.v1.subscriptions.create(params={"customer": cus.id, "items": [{"price": price.id, "quantity": 2}], "discounts": [{"coupon": coupon.id}]},
                                          options={"idempotency_key": "sdk-1"})
        check("sub active", sub.status == "active")
        check("discount coupon", sub.discount.coupon.percent_off == 25)
        inv = client.v1.invoices.retrieve(sub.latest_invoice)
        check("invoice paid with discount", inv.status == "paid" and inv.amount_paid == 2999)
        again = client.v1.subscriptions.create(params={"customer": cus.id, "items": [{"price": price.id, "quantity": 2}], "discounts": [{"coupon": coupon.id}]},
                                            options={"idempotency_key": "sdk-1"})
        check("idempotent replay", again.id == sub.id)
        upd = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
        check("cancel_at_period_end", upd.cancel_at_period_end is True and upd.cancel_at is not None)
        bad = client.v1.payment_methods.attach("pm_card_chargeDeclined", params={"customer": cus.id})
        check("declining card attached", bad.card.last4 == "0002")
        deleted = client.v1.subscriptions.cancel(sub.id)
        check("canceled", deleted.status == "canceled" and deleted.ended_at is not None)
        evs = client.v1.events.list(params={"type": "customer.subscription.*", "limit": 100})
        check("events", any(e.type == "customer.subscription.deleted" for e in evs.data))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

//! JSON rendering: the fast path serialises typed objects straight into the response
//! buffer; `expand[]` and `legacy_fields` go through `serde_json::Value` and patch it.

use crate::error::ApiError;
use crate::model::*;
use crate::store::{Book, Page};
use serde_json::{Map, Value};

/// Fields an object renders besides its serialised form: deprecated top-level fields older
/// API versions had (added when `legacy_fields` is on), and "includable" fields Stripe sends
/// only when expanded (`expand[]=payments` on an invoice).
pub trait Legacy {
    fn legacy(&self, _v: &mut Map<String, Value>) {}

    /// The includable field `key`, when the object has one by that name.
    fn includable(&self, _book: &Book, _key: &str) -> Option<Value> {
        None
    }
}

impl Legacy for Account {}
impl Legacy for Customer {}
impl Legacy for Product {}
impl Legacy for Price {}
impl Legacy for Coupon {}
impl Legacy for PaymentMethod {}
impl Legacy for Dispute {}
impl Legacy for Event {}

impl Legacy for Subscription {
    fn legacy(&self, v: &mut Map<String, Value>) {
        let (s, e) = self.period();
        v.insert("current_period_start".into(), s.into());
        v.insert("current_period_end".into(), e.into());
    }
}

impl Legacy for Invoice {
    fn legacy(&self, v: &mut Map<String, Value>) {
        v.insert("subscription".into(), opt(&self.subscription));
        v.insert("charge".into(), opt(&self.charge));
        v.insert("payment_intent".into(), opt(&self.payment_intent));
        v.insert("paid".into(), (self.status == "paid").into());
    }

    /// `payments`: the invoice's InvoicePayment list (basil and later), one per PaymentIntent.
    fn includable(&self, book: &Book, key: &str) -> Option<Value> {
        (key == "payments").then(|| invoice_payments(book, self))
    }
}

/// The invoice's payments as Stripe lists them (`invoice.payments`, `/v1/invoice_payments`):
/// the fake collects an invoice through one PaymentIntent, so at most one, the default.
pub fn invoice_payments(book: &Book, invoice: &Invoice) -> Value {
    let data: Vec<Value> = invoice
        .payment_intent
        .as_ref()
        .and_then(|id| book.payment_intents.get(id))
        .map(|pi| {
            let paid = pi.status == "succeeded";
            let canceled = invoice.status == "void";
            serde_json::json!({
                "id": format!("inpay_{}", pi.id.trim_start_matches("pi_")),
                "object": "invoice_payment",
                "amount_paid": if paid { Value::from(pi.amount_received) } else { Value::Null },
                "amount_requested": invoice.amount_due,
                "created": pi.created,
                "currency": pi.currency,
                "invoice": invoice.id,
                "is_default": true,
                "livemode": pi.livemode,
                "payment": {
                    "type": "payment_intent",
                    "payment_intent": pi.id,
                },
                "status": if paid { "paid" } else if canceled { "canceled" } else { "open" },
                "status_transitions": {
                    "canceled_at": if canceled { invoice.status_transitions.voided_at.map(Value::from).unwrap_or(Value::Null) } else { Value::Null },
                    "paid_at": if paid { invoice.status_transitions.paid_at.map(Value::from).unwrap_or(Value::Null) } else { Value::Null },
                },
            })
        })
        .into_iter()
        .collect();
    serde_json::json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "url": format!("/v1/invoice_payments?invoice={}", invoice.id),
    })
}

impl Legacy for Charge {
    fn legacy(&self, v: &mut Map<String, Value>) {
        v.insert("invoice".into(), opt(&self.invoice));
    }
}

impl Legacy for PaymentIntent {
    fn legacy(&self, v: &mut Map<String, Value>) {
        v.insert("invoice".into(), opt(&self.invoice));
    }
}

fn opt(s: &Option<String>) -> Value {
    s.as_ref()
        .map(|x| Value::String(x.clone()))
        .unwrap_or(Value::Null)
}

/// Looks up any expandable object by its id prefix.
pub fn lookup(book: &Book, id: &str) -> Option<Value> {
    let (prefix, _) = id.split_once('_')?;
    let v = match prefix {
        "cus" => serde_json::to_value(book.customers.get(id)?),
        "pm" => serde_json::to_value(book.payment_methods.get(id)?),
        "in" => serde_json::to_value(book.invoices.get(id)?),
        "ch" | "py" => serde_json::to_value(book.charges.get(id)?),
        "pi" => serde_json::to_value(book.payment_intents.get(id)?),
        "prod" => serde_json::to_value(book.products.get(id)?),
        "price" => serde_json::to_value(book.prices.get(id)?),
        "sub" => serde_json::to_value(book.subscriptions.get(id)?),
        "dp" | "du" => serde_json::to_value(book.disputes.get(id)?),
        "di" => serde_json::to_value(book.discount(id)?),
        "acct" if book.account.id == id => serde_json::to_value(&book.account),
        _ => return None,
    };
    v.ok()
}

fn cannot_expand(path: &str) -> ApiError {
    ApiError::new(
        400,
        "invalid_request_error",
        None,
        format!("This property cannot be expanded ({path})."),
    )
    .with_param("expand")
}

/// Fields Stripe leaves out unless expanded.
const INCLUDABLE: &[&str] = &["tiers"];

/// Applies one expansion path (`customer`, `items.data.price.product`, ...) in place.
pub fn expand_path(book: &Book, v: &mut Value, path: &[&str], full: &str) -> Result<(), ApiError> {
    let Some((key, rest)) = path.split_first() else {
        return Ok(());
    };
    let obj = match v {
        Value::Object(m) => m,
        Value::Null => return Ok(()),
        _ => return Err(cannot_expand(full)),
    };
    let child = match obj.get_mut(*key) {
        Some(child) => child,
        // "Includable" fields (`tiers`) may be expanded on any object of the type, also
        // one that has none (a per-unit price in a list of mixed prices).
        None if INCLUDABLE.contains(key) && rest.is_empty() => return Ok(()),
        None => return Err(cannot_expand(full)),
    };
    if let Value::String(id) = child {
        match lookup(book, id) {
            Some(found) => *child = found,
            None if rest.is_empty() => return Err(cannot_expand(full)),
            None => return Err(cannot_expand(full)),
        }
    }
    match child {
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::String(id) = item {
                    if let Some(found) = lookup(book, id) {
                        *item = found;
                    }
                }
                expand_path(book, item, rest, full)?;
            }
            Ok(())
        }
        Value::Object(_) => expand_path(book, child, rest, full),
        _ => Ok(()),
    }
}

/// Options shared by every rendering call.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOpts {
    pub legacy: bool,
}

fn to_value<T: StripeObject + Legacy>(
    book: &Book,
    obj: &T,
    expand: &[String],
    opts: RenderOpts,
) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(obj).map_err(|_| ApiError::api_error(500))?;
    if opts.legacy {
        if let Value::Object(m) = &mut v {
            obj.legacy(m);
        }
    }
    for path in expand {
        let parts: Vec<&str> = path.split('.').collect();
        if parts.len() > 4 {
            return Err(cannot_expand(path));
        }
        if let (Value::Object(m), Some(first)) = (&mut v, parts.first()) {
            if !m.contains_key(*first) {
                if let Some(included) = obj.includable(book, first) {
                    m.insert((*first).to_owned(), included);
                }
            }
        }
        expand_path(book, &mut v, &parts, path)?;
    }
    Ok(v)
}

/// Renders one object.
pub fn object<T: StripeObject + Legacy>(
    book: &Book,
    obj: &T,
    expand: &[String],
    opts: RenderOpts,
) -> Result<Vec<u8>, ApiError> {
    if expand.is_empty() && !opts.legacy {
        return serde_json::to_vec(obj).map_err(|_| ApiError::api_error(500));
    }
    let v = to_value(book, obj, expand, opts)?;
    serde_json::to_vec(&v).map_err(|_| ApiError::api_error(500))
}

/// Renders a list envelope. `expand` paths must start with `data.`.
pub fn list<T: StripeObject + Legacy>(
    book: &Book,
    page: &Page<'_, T>,
    url: &str,
    expand: &[String],
    opts: RenderOpts,
) -> Result<Vec<u8>, ApiError> {
    let mut inner = Vec::with_capacity(expand.len());
    for e in expand {
        match e.strip_prefix("data.") {
            Some(rest) if !rest.is_empty() => inner.push(rest.to_string()),
            _ => return Err(cannot_expand(e)),
        }
    }
    let mut out = Vec::with_capacity(page.items.len() * 1024 + 128);
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for (i, obj) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if inner.is_empty() && !opts.legacy {
            out.extend_from_slice(obj.json());
        } else {
            let v = to_value(book, &obj.obj, &inner, opts)?;
            serde_json::to_writer(&mut out, &v).map_err(|_| ApiError::api_error(500))?;
        }
    }
    out.extend_from_slice(b"],\"has_more\":");
    out.extend_from_slice(if page.has_more { b"true" } else { b"false" });
    out.extend_from_slice(b",\"url\":");
    serde_json::to_writer(&mut out, url).map_err(|_| ApiError::api_error(500))?;
    out.push(b'}');
    Ok(out)
}

/// The fields of `new` that differ from `old`, with their old values; nested plain
/// objects are diffed recursively (lists and list envelopes are kept whole), which is
/// how Stripe's `previous_attributes` look.
pub fn previous_attributes(old: &Value, new: &Value) -> Option<Value> {
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return None;
    };
    let mut prev = Map::new();
    for (k, nv) in n {
        let ov = o.get(k).unwrap_or(&Value::Null);
        if ov == nv {
            continue;
        }
        let is_plain_obj = |v: &Value| {
            v.as_object()
                .is_some_and(|m| m.get("object").is_none_or(|t| t != "list"))
        };
        if is_plain_obj(ov) && is_plain_obj(nv) {
            if let Some(inner) = previous_attributes(ov, nv) {
                prev.insert(k.clone(), inner);
            }
        } else {
            prev.insert(k.clone(), ov.clone());
        }
    }
    (!prev.is_empty()).then_some(Value::Object(prev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn previous_attributes_nested() {
        let old = json!({"status":"active","items":{"object":"list","data":[1]},"x":{"a":1,"b":2}});
        let new =
            json!({"status":"past_due","items":{"object":"list","data":[2]},"x":{"a":1,"b":3}});
        let p = previous_attributes(&old, &new).unwrap();
        assert_eq!(
            p,
            json!({"status":"active","items":{"object":"list","data":[1]},"x":{"b":2}})
        );
        assert!(previous_attributes(&old, &old).is_none());
    }
}

//! In-memory state: one [`Book`] of objects per account (the platform and each
//! connected account), each kind in a [`Collection`] with a pre-sorted index so list
//! pages are a binary search plus a short walk, never a sort or a clone.

use crate::error::ApiError;
use crate::model::*;
use crate::query::Range;
use crate::rng::IdGen;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Sort key: (created, id), ascending; lists walk it backwards (newest first).
pub type Key = (i64, String);

/// A stored object with its serialised JSON, computed on first read and dropped on
/// every mutation, so list pages are mostly byte copies.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub obj: T,
    json: OnceLock<Box<[u8]>>,
}

impl<T: Serialize> Entry<T> {
    fn new(obj: T) -> Self {
        Entry {
            obj,
            json: OnceLock::new(),
        }
    }

    /// The object's JSON (the pinned API version's shape, without expansions).
    pub fn json(&self) -> &[u8] {
        self.json.get_or_init(|| {
            serde_json::to_vec(&self.obj)
                .unwrap_or_default()
                .into_boxed_slice()
        })
    }
}

impl<T> std::ops::Deref for Entry<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.obj
    }
}

/// One kind of object, by id, with a global and a per-customer ordered index.
#[derive(Debug, Clone)]
pub struct Collection<T> {
    map: HashMap<String, Entry<T>>,
    order: Vec<Key>,
    by_customer: HashMap<String, Vec<Key>>,
    sorted: bool,
}

impl<T> Default for Collection<T> {
    fn default() -> Self {
        Collection {
            map: HashMap::new(),
            order: Vec::new(),
            by_customer: HashMap::new(),
            sorted: true,
        }
    }
}

fn insert_sorted(v: &mut Vec<Key>, k: Key) {
    // Nearly always appended at the end (new objects are the newest).
    let pos = v.partition_point(|x| x < &k);
    v.insert(pos, k);
}

impl<T: StripeObject> Collection<T> {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.map.get(id).map(|e| &e.obj)
    }

    pub fn entry(&self, id: &str) -> Option<&Entry<T>> {
        self.map.get(id)
    }

    /// Mutable access; `created` and the customer must not be changed through it.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.map.get_mut(id).map(|e| {
            e.json = OnceLock::new();
            &mut e.obj
        })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.map.values().map(|e| &e.obj)
    }

    /// Inserts or replaces, keeping the indexes sorted.
    pub fn insert(&mut self, obj: T) {
        self.ensure_sorted();
        let key: Key = (obj.created(), obj.id().to_string());
        if let Some(old) = self.map.get(obj.id()) {
            let old_key: Key = (old.created(), old.id().to_string());
            let old_customer = old.customer_id().map(str::to_string);
            if let Ok(pos) = self.order.binary_search(&old_key) {
                self.order.remove(pos);
            }
            if let Some(c) = old_customer {
                if let Some(v) = self.by_customer.get_mut(&c) {
                    if let Ok(pos) = v.binary_search(&old_key) {
                        v.remove(pos);
                    }
                }
            }
        }
        insert_sorted(&mut self.order, key.clone());
        if let Some(c) = obj.customer_id() {
            insert_sorted(self.by_customer.entry(c.to_string()).or_default(), key);
        }
        self.map.insert(obj.id().to_string(), Entry::new(obj));
    }

    /// Bulk load (seeding): append now, sort once in [`Collection::ensure_sorted`].
    pub fn push_unsorted(&mut self, obj: T) {
        let key: Key = (obj.created(), obj.id().to_string());
        if let Some(c) = obj.customer_id() {
            self.by_customer
                .entry(c.to_string())
                .or_default()
                .push(key.clone());
        }
        self.order.push(key);
        self.map.insert(obj.id().to_string(), Entry::new(obj));
        self.sorted = false;
    }

    pub fn ensure_sorted(&mut self) {
        if !self.sorted {
            self.order.sort_unstable();
            for v in self.by_customer.values_mut() {
                v.sort_unstable();
            }
            self.sorted = true;
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<T> {
        self.ensure_sorted();
        let obj = self.map.remove(id)?.obj;
        let key: Key = (obj.created(), obj.id().to_string());
        if let Ok(pos) = self.order.binary_search(&key) {
            self.order.remove(pos);
        }
        if let Some(c) = obj.customer_id() {
            if let Some(v) = self.by_customer.get_mut(c) {
                if let Ok(pos) = v.binary_search(&key) {
                    v.remove(pos);
                }
            }
        }
        Some(obj)
    }

    /// Serialises every object not yet cached (see [`Entry::json`]).
    pub fn warm(&self) {
        for e in self.map.values() {
            e.json();
        }
    }

    /// Ids of one customer's objects, oldest first.
    pub fn ids_for_customer(&self, customer: &str) -> Vec<String> {
        self.by_customer
            .get(customer)
            .map(|v| v.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default()
    }

    /// Ids of all objects, oldest first.
    pub fn ids(&self) -> Vec<String> {
        self.order.iter().map(|(_, id)| id.clone()).collect()
    }

    /// One page, newest first, honouring cursors, `created` bounds and a filter.
    pub fn page<'a>(
        &'a self,
        q: &PageQuery,
        customer: Option<&str>,
        filter: impl Fn(&T) -> bool,
    ) -> Result<Page<'a, T>, ApiError> {
        let index: &[Key] = match customer {
            Some(c) => self.by_customer.get(c).map(Vec::as_slice).unwrap_or(&[]),
            None => &self.order,
        };
        let cursor_key = |id: &str, param: &str| -> Result<Key, ApiError> {
            self.map
                .get(id)
                .map(|o| (o.created(), id.to_string()))
                .ok_or_else(|| ApiError::missing(T::OBJECT, id, param))
        };
        let want = q.limit + 1;
        let mut items: Vec<&Entry<T>> = Vec::with_capacity(want.min(101));
        let accept = |key: &Key| -> Option<&'a Entry<T>> {
            if !q.created.contains(key.0) {
                return None;
            }
            let e = self.map.get(&key.1)?;
            filter(&e.obj).then_some(e)
        };
        if let Some(before) = &q.ending_before {
            // Objects newer than the cursor, nearest first, then flipped to newest-first.
            let k = cursor_key(before, "ending_before")?;
            let start = index.partition_point(|x| x <= &k);
            for key in &index[start..] {
                if let Some(o) = accept(key) {
                    items.push(o);
                    if items.len() == want {
                        break;
                    }
                }
            }
            let has_more = items.len() > q.limit;
            items.truncate(q.limit);
            items.reverse();
            return Ok(Page { items, has_more });
        }
        let end = match &q.starting_after {
            Some(after) => {
                let k = cursor_key(after, "starting_after")?;
                index.partition_point(|x| x < &k)
            }
            None => match q.created.lt.or(q.created.lte.map(|v| v.saturating_add(1))) {
                // Skip straight past objects newer than the upper bound.
                Some(bound) => index.partition_point(|x| x.0 < bound),
                None => index.len(),
            },
        };
        for key in index[..end].iter().rev() {
            if let Some(lower) = q.created.gte.or(q.created.gt.map(|v| v.saturating_add(1))) {
                if key.0 < lower {
                    break;
                }
            }
            if let Some(o) = accept(key) {
                items.push(o);
                if items.len() == want {
                    break;
                }
            }
        }
        let has_more = items.len() > q.limit;
        items.truncate(q.limit);
        Ok(Page { items, has_more })
    }
}

/// The protocol part of a list request.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    pub limit: usize,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    pub created: Range,
}

impl Default for PageQuery {
    fn default() -> Self {
        PageQuery {
            limit: 10,
            starting_after: None,
            ending_before: None,
            created: Range::default(),
        }
    }
}

pub struct Page<'a, T> {
    pub items: Vec<&'a Entry<T>>,
    pub has_more: bool,
}

/// Everything one account owns.
#[derive(Debug, Clone)]
pub struct Book {
    pub account: Account,
    pub customers: Collection<Customer>,
    pub products: Collection<Product>,
    pub prices: Collection<Price>,
    pub coupons: Collection<Coupon>,
    pub subscriptions: Collection<Subscription>,
    pub invoices: Collection<Invoice>,
    pub charges: Collection<Charge>,
    pub payment_intents: Collection<PaymentIntent>,
    pub payment_methods: Collection<PaymentMethod>,
    pub disputes: Collection<Dispute>,
    pub events: Collection<Event>,
}

impl Book {
    pub fn new(account: Account) -> Self {
        Book {
            account,
            customers: Collection::default(),
            products: Collection::default(),
            prices: Collection::default(),
            coupons: Collection::default(),
            subscriptions: Collection::default(),
            invoices: Collection::default(),
            charges: Collection::default(),
            payment_intents: Collection::default(),
            payment_methods: Collection::default(),
            disputes: Collection::default(),
            events: Collection::default(),
        }
    }

    pub fn ensure_sorted(&mut self) {
        self.customers.ensure_sorted();
        self.products.ensure_sorted();
        self.prices.ensure_sorted();
        self.coupons.ensure_sorted();
        self.subscriptions.ensure_sorted();
        self.invoices.ensure_sorted();
        self.charges.ensure_sorted();
        self.payment_intents.ensure_sorted();
        self.payment_methods.ensure_sorted();
        self.disputes.ensure_sorted();
        self.events.ensure_sorted();
    }

    /// Fills every object's JSON cache so first list pages are as fast as later ones.
    pub fn warm(&self) {
        self.customers.warm();
        self.products.warm();
        self.prices.warm();
        self.coupons.warm();
        self.subscriptions.warm();
        self.invoices.warm();
        self.charges.warm();
        self.payment_intents.warm();
        self.payment_methods.warm();
    }

    /// Finds a discount by id (discounts live on their subscription).
    pub fn discount(&self, id: &str) -> Option<&Discount> {
        // Discount ids embed nothing that points at the subscription; a linear scan is
        // fine because expansion of `discounts` is rare.
        self.subscriptions
            .values()
            .filter_map(|s| s.discount.as_ref())
            .find(|d| d.id == id)
    }

    /// Counts per kind, for the admin summary.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "account": self.account.id,
            "customers": self.customers.len(),
            "products": self.products.len(),
            "prices": self.prices.len(),
            "coupons": self.coupons.len(),
            "subscriptions": self.subscriptions.len(),
            "invoices": self.invoices.len(),
            "charges": self.charges.len(),
            "payment_intents": self.payment_intents.len(),
            "payment_methods": self.payment_methods.len(),
            "disputes": self.disputes.len(),
            "events": self.events.len(),
        })
    }
}

/// An OAuth access token: a bearer key scoped to one connected account.
#[derive(Debug, Clone)]
pub struct Grant {
    pub account: String,
    pub read_only: bool,
    pub scope: String,
}

/// A stored idempotent response.
#[derive(Debug, Clone)]
pub struct IdemEntry {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// The whole fake: books per account plus protocol state.
#[derive(Debug, Clone)]
pub struct State {
    pub platform: String,
    pub books: HashMap<String, Book>,
    /// The fake's clock (unix seconds); moves via `advance_time` and, when `realtime` is
    /// set, with the wall clock from its anchor (like Stripe's, events of later changes get
    /// later `created` times). Read it through [`State::now`].
    pub clock: i64,
    /// `(clock, instant)` at which the clock started following real time.
    pub realtime: Option<(i64, std::time::Instant)>,
    pub ids: IdGen,
    pub grants: HashMap<String, Grant>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub oauth_codes: HashMap<String, Grant>,
    /// Connected accounts pre-created (e.g. seeded) and not yet claimed by OAuth.
    pub unclaimed_accounts: Vec<String>,
    pub idempotency: HashMap<(String, String), IdemEntry>,
    /// Connected accounts whose platform access was revoked (`/oauth/deauthorize`).
    pub revoked_accounts: std::collections::HashSet<String>,
    pub truth: Option<serde_json::Value>,
}

impl State {
    /// The current time of the fake: explicit advances, plus real time elapsed when the
    /// clock follows the wall clock. Never moves backwards.
    pub fn now(&mut self) -> i64 {
        if let Some((at, since)) = self.realtime {
            let t = at + since.elapsed().as_secs() as i64;
            if t > self.clock {
                self.clock = t;
            }
        }
        self.clock
    }

    /// An empty state with just the platform account.
    pub fn new(now: i64, id_seed: u64) -> State {
        let mut ids = IdGen::new(id_seed);
        let platform = ids.next("acct");
        let account = Account::new(platform.clone(), "Fake Platform", now - 86400 * 800);
        let mut books = HashMap::new();
        books.insert(platform.clone(), Book::new(account));
        State {
            platform,
            books,
            clock: now,
            realtime: None,
            ids,
            grants: HashMap::new(),
            refresh_tokens: HashMap::new(),
            oauth_codes: HashMap::new(),
            unclaimed_accounts: Vec::new(),
            idempotency: HashMap::new(),
            revoked_accounts: Default::default(),
            truth: None,
        }
    }

    pub fn platform_book(&self) -> &Book {
        &self.books[&self.platform]
    }

    pub fn platform_book_mut(&mut self) -> &mut Book {
        let p = self.platform.clone();
        self.books.get_mut(&p).expect("platform book exists")
    }

    /// Creates an empty connected account.
    pub fn add_connected_account(&mut self, name: &str) -> String {
        let id = self.ids.next("acct");
        let acct = Account::new(id.clone(), name, self.clock);
        self.books.insert(id.clone(), Book::new(acct));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cust(id: &str, created: i64) -> Customer {
        Customer::new(id.into(), created, "ABC".into())
    }

    fn coll(n: usize) -> Collection<Customer> {
        let mut c = Collection::default();
        for i in 0..n {
            // Pairs share a `created` second to exercise the id tie-break.
            c.insert(cust(&format!("cus_{i:04}"), 1000 + (i as i64 / 2)));
        }
        c
    }

    fn ids(p: &Page<'_, Customer>) -> Vec<String> {
        p.items.iter().map(|c| c.id.clone()).collect()
    }

    #[test]
    fn walk_forward_with_starting_after() {
        let c = coll(25);
        let mut q = PageQuery {
            limit: 7,
            ..Default::default()
        };
        let mut seen = vec![];
        loop {
            let p = c.page(&q, None, |_| true).unwrap();
            let page = ids(&p);
            seen.extend(page.clone());
            if !p.has_more {
                break;
            }
            q.starting_after = page.last().cloned();
        }
        let expected: Vec<String> = (0..25).rev().map(|i| format!("cus_{i:04}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn walk_backward_with_ending_before() {
        let c = coll(25);
        let mut q = PageQuery {
            limit: 4,
            ending_before: Some("cus_0000".into()),
            ..Default::default()
        };
        let mut seen: Vec<String> = vec![];
        loop {
            let p = c.page(&q, None, |_| true).unwrap();
            let page = ids(&p);
            // Each page is itself newest first.
            let mut sorted = page.clone();
            sorted.sort();
            sorted.reverse();
            assert_eq!(page, sorted);
            seen.splice(0..0, page.clone());
            if !p.has_more {
                break;
            }
            q.ending_before = page.first().cloned();
        }
        let expected: Vec<String> = (1..25).rev().map(|i| format!("cus_{i:04}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn created_bounds_and_filters() {
        let c = coll(20); // created 1000..=1009
        let q = PageQuery {
            limit: 100,
            created: Range {
                gte: Some(1003),
                lt: Some(1005),
                ..Default::default()
            },
            ..Default::default()
        };
        let p = c.page(&q, None, |_| true).unwrap();
        assert_eq!(
            ids(&p),
            vec!["cus_0009", "cus_0008", "cus_0007", "cus_0006"]
        );
        let p = c.page(&q, None, |c| c.id.ends_with('8')).unwrap();
        assert_eq!(ids(&p), vec!["cus_0008"]);
    }

    #[test]
    fn unknown_cursor_is_404() {
        let c = coll(3);
        let q = PageQuery {
            starting_after: Some("cus_nope".into()),
            ..Default::default()
        };
        let e = c.page(&q, None, |_| true).err().unwrap();
        assert_eq!(e.status, 404);
        assert_eq!(e.param.as_deref(), Some("starting_after"));
    }

    #[test]
    fn bulk_load_sorts() {
        let mut c = Collection::default();
        for i in (0..10).rev() {
            c.push_unsorted(cust(&format!("cus_{i:04}"), 1000 + i));
        }
        c.ensure_sorted();
        let p = c.page(&PageQuery::default(), None, |_| true).unwrap();
        assert_eq!(p.items[0].id, "cus_0009");
        assert!(!p.has_more);
    }
}

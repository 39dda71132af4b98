//! Deterministic book-of-business generator and its truth file.
//!
//! The generator writes objects straight into the store (no events: history older than
//! the fake's start is not replayed as events). The truth is then computed from the
//! generated objects, not from the generator's intentions, so it always agrees with
//! what the API serves.

use crate::engine::{self, add_interval, sub_interval, DAY};
use crate::model::*;
use crate::rng::{IdGen, Rng};
use crate::store::{Book, State};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// 2026-01-01T00:00:00Z: the default "now" of a seeded book, so a seed alone fixes it.
pub const DEFAULT_NOW: i64 = 1_767_225_600;

/// What to generate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedOptions {
    /// Customers in the platform account.
    pub customers: usize,
    pub seed: u64,
    /// The book's "now" (unix seconds); `None` = [`DEFAULT_NOW`].
    pub now: Option<i64>,
    /// Connected accounts to pre-create (claimed by `/oauth/authorize` in order).
    pub connected_accounts: usize,
    /// Customers in each connected account.
    pub connected_customers: usize,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            customers: 100,
            seed: 1,
            now: None,
            connected_accounts: 0,
            connected_customers: 20,
        }
    }
}

/// Generates `customers` customers with `seed` at [`DEFAULT_NOW`].
pub fn generate(customers: usize, seed: u64) -> (State, Truth) {
    generate_with(&SeedOptions {
        customers,
        seed,
        ..Default::default()
    })
}

pub fn generate_with(opts: &SeedOptions) -> (State, Truth) {
    let now = opts.now.unwrap_or(DEFAULT_NOW);
    let mut state = State::new(now, opts.seed);
    let mut rng = Rng::new(opts.seed);
    let mut labels = HashMap::new();
    let platform = state.platform.clone();
    {
        let State { books, ids, .. } = &mut state;
        let book = books.get_mut(&platform).expect("platform book");
        generate_book(book, ids, &mut rng, opts.customers, now, 0, &mut labels);
    }
    for k in 0..opts.connected_accounts {
        let name = format!("{} Holdings", COMPANY_A[k % COMPANY_A.len()]);
        let acct = state.add_connected_account(&name);
        let mut sub_rng = Rng::new(opts.seed.wrapping_add(1000 + k as u64));
        let State { books, ids, .. } = &mut state;
        let book = books.get_mut(&acct).expect("connected book");
        generate_book(
            book,
            ids,
            &mut sub_rng,
            opts.connected_customers,
            now,
            1_000_000 * (k + 1),
            &mut labels,
        );
        state.unclaimed_accounts.push(acct);
    }
    let truth = compute_truth(&state, opts, now, &labels);
    (state, truth)
}

// ------------------------------------------------------------------ catalog

const CURRENCIES: &[(&str, u32)] = &[
    ("usd", 60),
    ("eur", 15),
    ("gbp", 10),
    ("jpy", 8),
    ("cad", 7),
];

/// Converts a USD-cent list price into a tidy amount in `cur`'s minor unit.
fn local_amount(cur: &str, usd_cents: i64) -> i64 {
    match cur {
        "usd" => usd_cents,
        "eur" => round_to(usd_cents * 92 / 100, 100),
        "gbp" => round_to(usd_cents * 79 / 100, 100),
        "cad" => round_to(usd_cents * 136 / 100, 100),
        "jpy" => round_to(usd_cents * 150 / 100, 10), // zero-decimal: yen
        _ => usd_cents,
    }
    .max(1)
}

fn round_to(x: i64, step: i64) -> i64 {
    if x < step {
        return x;
    }
    // Psychological pricing: 2700 → 2699 for two-decimal currencies.
    (x + step / 2) / step * step - ((step == 100 && x >= 1000) as i64)
}

struct PlanDef {
    product: &'static str,
    /// (interval, count, usd cents, weight)
    prices: &'static [(Interval, i64, i64, u32)],
}

const BASE_PLANS: &[PlanDef] = &[
    PlanDef {
        product: "Starter",
        prices: &[
            (Interval::Month, 1, 2900, 60),
            (Interval::Year, 1, 29000, 15),
            (Interval::Week, 1, 900, 6),
            (Interval::Month, 3, 8100, 8),
            (Interval::Day, 1, 199, 2),
        ],
    },
    PlanDef {
        product: "Growth",
        prices: &[
            (Interval::Month, 1, 9900, 60),
            (Interval::Year, 1, 99000, 20),
            (Interval::Month, 3, 27900, 8),
        ],
    },
    PlanDef {
        product: "Business",
        prices: &[
            (Interval::Month, 1, 29900, 60),
            (Interval::Year, 1, 299000, 25),
        ],
    },
    PlanDef {
        product: "Enterprise",
        prices: &[
            (Interval::Month, 1, 120000, 50),
            (Interval::Year, 1, 1200000, 40),
        ],
    },
];

struct Catalog {
    /// (currency, plan index) → [(price, weight)]
    plans: HashMap<(String, usize), Vec<(Price, u32)>>,
    /// (currency, interval, count) → add-on prices: per-seat, volume-tiered seats,
    /// metered API calls, support.
    seats: HashMap<(String, Interval, i64), Price>,
    seats_volume: HashMap<String, Price>,
    seats_graduated: HashMap<String, Price>,
    metered: HashMap<String, Price>,
    coupons_percent: Vec<Coupon>,
    coupons_amount: HashMap<String, Vec<Coupon>>,
}

#[allow(clippy::too_many_arguments)]
fn mk_price(
    ids: &mut IdGen,
    product: &str,
    cur: &str,
    interval: Interval,
    count: i64,
    amount: Option<i64>,
    usage: &'static str,
    created: i64,
) -> Price {
    Price {
        id: ids.next("price"),
        object: Lit("price"),
        active: true,
        billing_scheme: "per_unit",
        created,
        currency: cur.to_string(),
        custom_unit_amount: Null,
        livemode: false,
        lookup_key: None,
        metadata: Metadata::new(),
        nickname: None,
        product: product.to_string(),
        recurring: Some(Recurring {
            interval,
            interval_count: count,
            meter: Null,
            trial_period_days: None,
            usage_type: usage,
        }),
        tax_behavior: "unspecified",
        tiers: None,
        tiers_mode: None,
        transform_quantity: Null,
        kind: "recurring",
        unit_amount: amount,
        unit_amount_decimal: amount.map(|a| a.to_string()),
    }
}

fn build_catalog(book: &mut Book, ids: &mut IdGen, created: i64) -> Catalog {
    let mut cat = Catalog {
        plans: HashMap::new(),
        seats: HashMap::new(),
        seats_volume: HashMap::new(),
        seats_graduated: HashMap::new(),
        metered: HashMap::new(),
        coupons_percent: vec![],
        coupons_amount: HashMap::new(),
    };
    let product = |book: &mut Book, ids: &mut IdGen, name: &str| -> String {
        let p = Product::new(ids.next("prod"), name.to_string(), created);
        let id = p.id.clone();
        book.products.push_unsorted(p);
        id
    };
    let plan_products: Vec<String> = BASE_PLANS
        .iter()
        .map(|p| product(book, ids, p.product))
        .collect();
    let seats_prod = product(book, ids, "Additional seats");
    let api_prod = product(book, ids, "API calls");
    for (cur, _) in CURRENCIES {
        for (pi, def) in BASE_PLANS.iter().enumerate() {
            let mut v = vec![];
            for (iv, n, usd, w) in def.prices {
                let mut p = mk_price(
                    ids,
                    &plan_products[pi],
                    cur,
                    *iv,
                    *n,
                    Some(local_amount(cur, *usd)),
                    "licensed",
                    created,
                );
                p.nickname = Some(format!(
                    "{} {}{}",
                    def.product,
                    if *n > 1 {
                        format!("every {n} ")
                    } else {
                        String::new()
                    },
                    iv.as_str()
                ));
                v.push((p, *w));
            }
            cat.plans.insert((cur.to_string(), pi), v);
        }
        for (iv, n, usd) in [
            (Interval::Month, 1, 1200),
            (Interval::Year, 1, 12000),
            (Interval::Month, 3, 3400),
            (Interval::Week, 1, 300),
            (Interval::Day, 1, 40),
        ] {
            let p = mk_price(
                ids,
                &seats_prod,
                cur,
                iv,
                n,
                Some(local_amount(cur, usd)),
                "licensed",
                created,
            );
            cat.seats.insert((cur.to_string(), iv, n), p);
        }
        let mut vol = mk_price(
            ids,
            &seats_prod,
            cur,
            Interval::Month,
            1,
            None,
            "licensed",
            created,
        );
        vol.billing_scheme = "tiered";
        vol.unit_amount_decimal = None;
        vol.tiers_mode = Some("volume");
        vol.tiers = Some(vec![
            Tier::new(Some(10), local_amount(cur, 1500), 0),
            Tier::new(Some(50), local_amount(cur, 1200), 0),
            Tier::new(None, local_amount(cur, 900), 0),
        ]);
        vol.nickname = Some("Seats (volume)".into());
        cat.seats_volume.insert(cur.to_string(), vol);
        let mut grad = mk_price(
            ids,
            &seats_prod,
            cur,
            Interval::Month,
            1,
            None,
            "licensed",
            created,
        );
        grad.billing_scheme = "tiered";
        grad.unit_amount_decimal = None;
        grad.tiers_mode = Some("graduated");
        grad.tiers = Some(vec![
            Tier::new(Some(5), local_amount(cur, 2000), 0),
            Tier::new(None, local_amount(cur, 1000), local_amount(cur, 5000)),
        ]);
        grad.nickname = Some("Seats (graduated)".into());
        cat.seats_graduated.insert(cur.to_string(), grad);
        let mut met = mk_price(
            ids,
            &api_prod,
            cur,
            Interval::Month,
            1,
            Some(if *cur == "jpy" { 1 } else { 2 }),
            "metered",
            created,
        );
        met.nickname = Some("API calls (metered)".into());
        cat.metered.insert(cur.to_string(), met);
    }
    let pct = |id: &str, bp: i64, duration: &'static str, months: Option<i64>| Coupon {
        id: id.to_string(),
        object: Lit("coupon"),
        amount_off: None,
        created,
        currency: None,
        duration,
        duration_in_months: months,
        livemode: false,
        max_redemptions: Null,
        metadata: Metadata::new(),
        name: Some(id.replace('_', " ")),
        percent_off: Some(bp),
        redeem_by: Null,
        times_redeemed: 0,
        valid: true,
    };
    cat.coupons_percent = vec![
        pct("PCT10_FOREVER", 1000, "forever", None),
        pct("PCT12_5_FOREVER", 1250, "forever", None),
        pct("PCT20_ONCE", 2000, "once", None),
        pct("PCT25_3MONTHS", 2500, "repeating", Some(3)),
        pct("PCT50_12MONTHS", 5000, "repeating", Some(12)),
        pct("PCT15_FOREVER", 1500, "forever", None),
    ];
    for (cur, _) in CURRENCIES {
        let amt = |id: String, usd: i64, duration: &'static str, months: Option<i64>| Coupon {
            amount_off: Some(local_amount(cur, usd)),
            currency: Some(cur.to_string()),
            percent_off: None,
            name: Some(id.replace('_', " ")),
            ..pct(&id, 0, duration, months)
        };
        cat.coupons_amount.insert(
            cur.to_string(),
            vec![
                amt(
                    format!("AMT5_FOREVER_{}", cur.to_uppercase()),
                    500,
                    "forever",
                    None,
                ),
                amt(
                    format!("AMT10_ONCE_{}", cur.to_uppercase()),
                    1000,
                    "once",
                    None,
                ),
                amt(
                    format!("AMT20_6MONTHS_{}", cur.to_uppercase()),
                    2000,
                    "repeating",
                    Some(6),
                ),
            ],
        );
    }
    for v in cat.plans.values() {
        for (p, _) in v {
            book.prices.push_unsorted(p.clone());
        }
    }
    for p in cat
        .seats
        .values()
        .chain(cat.seats_volume.values())
        .chain(cat.seats_graduated.values())
        .chain(cat.metered.values())
    {
        book.prices.push_unsorted(p.clone());
    }
    for c in cat
        .coupons_percent
        .iter()
        .chain(cat.coupons_amount.values().flatten())
    {
        book.coupons.push_unsorted(c.clone());
    }
    cat
}

// ------------------------------------------------------------------ companies

const COMPANY_A: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Aperture",
    "Monarch",
    "Oscorp",
    "Massive",
    "Bluesun",
    "Duff",
    "Gringotts",
    "Nakatomi",
    "Pendant",
    "Sirius",
    "Virtucon",
    "Zorg",
    "Krusty",
    "Planet",
    "Nimbus",
    "Quantum",
    "Orbit",
    "Lumen",
];
const COMPANY_B: &[&str] = &[
    "Analytics",
    "Labs",
    "Systems",
    "Logistics",
    "Health",
    "Foods",
    "Robotics",
    "Media",
    "Capital",
    "Software",
    "Energy",
    "Studios",
    "Networks",
    "Cloud",
    "Bio",
    "Dynamics",
    "Works",
    "Partners",
    "Ventures",
    "Retail",
];
const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yuki", "zoe",
    "hana", "lars", "ines", "omar",
];
const LAST: &[&str] = &[
    "smith", "jones", "garcia", "muller", "tanaka", "martin", "brown", "wilson", "taylor", "lee",
    "silva", "kim", "novak", "rossi", "dubois", "sato", "walker", "young", "king", "wright",
];
const FREEMAIL: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
];

/// The company (CS platform account) a Stripe customer belongs to: the matcher's label.
#[derive(Debug, Clone)]
pub struct Company {
    pub id: String,
    pub name: String,
    pub domain: String,
}

fn legal_suffix(cur: &str) -> &'static str {
    match cur {
        "eur" => "GmbH",
        "gbp" => "Ltd",
        "jpy" => "KK",
        "cad" => "Corp",
        _ => "Inc",
    }
}

fn company(k: usize, cur: &str) -> Company {
    let a = COMPANY_A[k % COMPANY_A.len()];
    let b = COMPANY_B[(k / COMPANY_A.len()) % COMPANY_B.len()];
    let round = k / (COMPANY_A.len() * COMPANY_B.len());
    let name = if round == 0 {
        format!("{a} {b}")
    } else {
        format!("{a} {b} {}", round + 1)
    };
    let tld = match cur {
        "eur" => "de",
        "gbp" => "co.uk",
        "jpy" => "jp",
        "cad" => "ca",
        _ if matches!(k % 3, 0) => "io",
        _ => "com",
    };
    let slug: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Company {
        id: format!("cscx_{:07}", k + 1),
        name,
        domain: format!("{slug}.{tld}"),
    }
}

/// Spelling variants a company's name takes across its Stripe customers.
fn name_variant(rng: &mut Rng, c: &Company, cur: &str) -> String {
    let legal = legal_suffix(cur);
    match rng.weighted(&[40, 15, 20, 10, 10, 5]) {
        0 => format!("{} {legal}", c.name),
        1 => format!("{}, {}.", c.name.to_uppercase(), legal.to_uppercase()),
        2 => c.name.clone(),
        3 => format!("{} {}.", c.name.to_lowercase(), legal.to_lowercase()),
        4 => format!("{} {legal} (Billing)", c.name),
        _ => format!("The {} Company", c.name),
    }
}

// ------------------------------------------------------------------ generation

#[derive(Clone, Copy, PartialEq, Debug)]
enum Profile {
    Healthy,
    Recovering,
    PastDue,
    Unpaid,
}

const DECLINES: &[&str] = &[
    "insufficient_funds",
    "generic_decline",
    "do_not_honor",
    "expired_card",
    "lost_card",
];
const BRANDS: &[(&str, &str)] = &[
    ("visa", "credit"),
    ("mastercard", "credit"),
    ("amex", "credit"),
    ("discover", "credit"),
    ("visa", "debit"),
];

#[allow(clippy::too_many_arguments)]
fn generate_book(
    book: &mut Book,
    ids: &mut IdGen,
    rng: &mut Rng,
    n: usize,
    now: i64,
    company_offset: usize,
    labels: &mut HashMap<String, Company>,
) {
    let cat = build_catalog(book, ids, now - 4 * 365 * DAY);
    let (now_y, now_m) = ym(now);
    let mut made = 0;
    let mut k = 0;
    while made < n {
        let size = [1usize, 2, 3][rng.weighted(&[72, 20, 8])].min(n - made);
        let cur = CURRENCIES[rng.weighted(&CURRENCIES.iter().map(|c| c.1).collect::<Vec<_>>())].0;
        let comp = company(company_offset + k, cur);
        for _ in 0..size {
            let cid = gen_customer(book, ids, rng, &cat, &comp, cur, now, (now_y, now_m));
            labels.insert(cid, comp.clone());
            made += 1;
        }
        k += 1;
    }
    book.ensure_sorted();
}

fn ym(t: i64) -> (i64, i64) {
    use chrono::Datelike;
    let d = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    (d.year() as i64, d.month() as i64)
}

#[allow(clippy::too_many_arguments)]
fn gen_customer(
    book: &mut Book,
    ids: &mut IdGen,
    rng: &mut Rng,
    cat: &Catalog,
    comp: &Company,
    cur: &str,
    now: i64,
    (now_y, now_m): (i64, i64),
) -> String {
    let created = if rng.chance(0.8) {
        now - rng.range(400 * DAY, 4 * 365 * DAY)
    } else {
        now - rng.range(30 * DAY, 400 * DAY)
    };
    let cid = ids.next("cus");
    let mut c = Customer::new(cid.clone(), created, ids.token("", 8).to_uppercase());
    let first = *rng.pick(FIRST);
    let last = *rng.pick(LAST);
    let freemail = rng.chance(0.12);
    c.email = Some(if freemail {
        format!("{first}.{last}{}@{}", rng.range(1, 99), rng.pick(FREEMAIL))
    } else {
        match rng.weighted(&[50, 20, 15, 15]) {
            0 => format!("{first}.{last}@{}", comp.domain),
            1 => format!("billing@{}", comp.domain),
            2 => format!("finance@{}", comp.domain),
            _ => format!("ap@{}", comp.domain),
        }
    });
    c.name = Some(name_variant(rng, comp, cur));
    c.currency = Some(cur.to_string());
    if rng.chance(0.55) {
        c.metadata.insert("cscx_account_id".into(), comp.id.clone());
    }
    if rng.chance(0.2) {
        c.metadata.insert(
            "signup_source".into(),
            (*rng.pick(&["web", "sales", "partner"])).into(),
        );
    }
    let profile = match rng.weighted(&[84, 6, 7, 3]) {
        0 => Profile::Healthy,
        1 => Profile::Recovering,
        2 => Profile::PastDue,
        _ => Profile::Unpaid,
    };
    // Cards: the default one first.
    let n_cards = if rng.chance(0.15) { 2 } else { 1 };
    let mut default_pm = None;
    for i in 0..n_cards {
        let (brand, funding) = *rng.pick(BRANDS);
        let last4 = format!("{:04}", rng.below(10_000));
        let (ey, em) = match rng.weighted(&[88, 7, 5]) {
            0 => (now_y + rng.range(1, 5), rng.range(1, 12)),
            // Expiring this month or next.
            1 => {
                let m = now_m + rng.range(0, 1);
                if m > 12 {
                    (now_y + 1, m - 12)
                } else {
                    (now_y, m)
                }
            }
            // Expired last month.
            _ => {
                if now_m == 1 {
                    (now_y - 1, 12)
                } else {
                    (now_y, now_m - 1)
                }
            }
        };
        let decline = (i == 0 && matches!(profile, Profile::PastDue | Profile::Unpaid))
            .then(|| rng.pick(DECLINES).to_string());
        let pm = PaymentMethod {
            id: ids.next("pm"),
            object: Lit("payment_method"),
            allow_redisplay: "unspecified",
            billing_details: BillingDetails {
                address: Null,
                email: c.email.clone(),
                name: Some(format!("{} {}", cap(first), cap(last))),
                phone: Null,
            },
            card: Card {
                brand: brand.into(),
                country: Some(
                    match cur {
                        "eur" => "DE",
                        "gbp" => "GB",
                        "jpy" => "JP",
                        "cad" => "CA",
                        _ => "US",
                    }
                    .into(),
                ),
                exp_month: em,
                exp_year: ey,
                funding: funding.into(),
                last4,
            },
            created: created + i as i64 * 3600,
            customer: Some(cid.clone()),
            livemode: false,
            metadata: Metadata::new(),
            kind: Lit("card"),
            decline,
        };
        if i == 0 {
            default_pm = Some(pm.id.clone());
        }
        book.payment_methods.push_unsorted(pm);
    }
    c.invoice_settings.default_payment_method = default_pm.clone();
    let mut inv_seq = 1;
    let n_subs = if rng.chance(0.35) { 2 } else { 1 };
    let mut delinquent = false;
    for s in 0..n_subs {
        let forced = match (s, profile) {
            (0, Profile::PastDue) => Some("past_due"),
            (0, Profile::Unpaid) => Some("unpaid"),
            _ => None,
        };
        let status = forced.unwrap_or_else(|| {
            [
                "active",
                "trialing",
                "canceled",
                "incomplete",
                "incomplete_expired",
                "paused",
                "active_paused",
                "active_cape",
            ][rng.weighted(&[70, 7, 15, 1, 1, 1, 2, 6])]
        });
        let d = gen_subscription(
            book,
            ids,
            rng,
            cat,
            &c,
            cur,
            now,
            created,
            status,
            profile,
            &mut inv_seq,
        );
        delinquent |= d;
    }
    c.delinquent = delinquent;
    c.next_invoice_sequence = inv_seq;
    book.customers.push_unsorted(c);
    cid
}

fn cap(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f.to_uppercase().collect::<String>() + cs.as_str(),
        None => String::new(),
    }
}

/// Builds one subscription and its invoice history; returns whether it leaves the
/// customer delinquent (an open invoice with failed attempts).
#[allow(clippy::too_many_arguments)]
fn gen_subscription(
    book: &mut Book,
    ids: &mut IdGen,
    rng: &mut Rng,
    cat: &Catalog,
    c: &Customer,
    cur: &str,
    now: i64,
    customer_created: i64,
    status: &'static str,
    profile: Profile,
    inv_seq: &mut i64,
) -> bool {
    let plan_idx = rng.weighted(&[40, 30, 20, 10]);
    let options = &cat.plans[&(cur.to_string(), plan_idx)];
    let weights: Vec<u32> = options.iter().map(|(_, w)| *w).collect();
    let base = options[rng.weighted(&weights)].0.clone();
    let rec = base.recurring.clone().expect("plan prices are recurring");
    let (iv, ic) = (rec.interval, rec.interval_count);
    let mut items: Vec<(Price, Option<i64>)> = vec![(base, Some(1))];
    if plan_idx >= 1 && rng.chance(0.3) {
        let seats = if iv == Interval::Month && ic == 1 && rng.chance(0.3) {
            if rng.chance(0.5) {
                cat.seats_volume[cur].clone()
            } else {
                cat.seats_graduated[cur].clone()
            }
        } else {
            cat.seats
                .get(&(cur.to_string(), iv, ic))
                .cloned()
                .unwrap_or_else(|| cat.seats_volume[cur].clone())
        };
        // Keep every item on the plan's interval (Stripe requires it).
        if seats
            .recurring
            .as_ref()
            .map(|r| (r.interval, r.interval_count))
            == Some((iv, ic))
        {
            items.push((seats, Some(rng.range(2, 60))));
        }
    }
    if iv == Interval::Month && ic == 1 && plan_idx >= 2 && rng.chance(0.25) {
        items.push((cat.metered[cur].clone(), None));
    }
    let interval_secs = add_interval(now, iv, ic) - now;
    // Where the current period starts, chosen per status so that retries line up.
    let (real_status, cape, paused_collection) = match status {
        "active_paused" => ("active", false, true),
        "active_cape" => ("active", true, false),
        s => (s, false, false),
    };
    let period_offset = match real_status {
        "past_due" => rng.range(0, 14 * DAY).min(interval_secs - 1),
        "unpaid" => rng.range(15 * DAY, 40 * DAY).min(interval_secs - 1).max(0),
        _ => rng.range(0, interval_secs - 1),
    };
    let cur_start = now - period_offset.max(0);
    let sub_id = ids.next("sub");
    let history_periods = match iv {
        Interval::Day => rng.range(1, 12),
        Interval::Week => rng.range(1, 12),
        _ => {
            // Up to 3 years back, limited by when the customer signed up.
            let mut k = 0;
            let mut t = cur_start;
            let max_k = rng.range(6, 48);
            while k < max_k {
                let prev = sub_interval(t, iv, ic);
                if prev < customer_created {
                    break;
                }
                t = prev;
                k += 1;
            }
            k
        }
    };
    let mut anchor = cur_start;
    for _ in 0..history_periods {
        anchor = sub_interval(anchor, iv, ic);
    }
    let had_trial = rng.chance(0.25);
    let trial_days = 14;
    let (start, trial_end) = match real_status {
        "trialing" => {
            let s = now - rng.range(DAY, 12 * DAY);
            (s, Some(s + trial_days * DAY))
        }
        "paused" => {
            let s = now - rng.range(20 * DAY, 60 * DAY);
            (s, Some(s + trial_days * DAY))
        }
        "incomplete" => (now - rng.range(60, 20 * 3600), None),
        "incomplete_expired" => (now - rng.range(2 * DAY, 90 * DAY), None),
        _ if had_trial => (anchor - trial_days * DAY, Some(anchor)),
        _ => (anchor, None),
    };
    let discount = if rng.chance(0.22) {
        let coupon = if rng.chance(0.6) {
            rng.pick(&cat.coupons_percent).clone()
        } else {
            rng.pick(&cat.coupons_amount[cur]).clone()
        };
        let end = match (coupon.duration, coupon.duration_in_months) {
            ("repeating", Some(m)) => Some(add_interval(start, Interval::Month, m)),
            _ => None,
        };
        Some(Discount {
            id: ids.next("di"),
            object: Lit("discount"),
            checkout_session: Null,
            source: DiscountSource::coupon(&coupon.id),
            coupon,
            customer: c.id.clone(),
            end,
            invoice: Null,
            invoice_item: Null,
            promotion_code: Null,
            start,
            subscription: Some(sub_id.clone()),
            subscription_item: Null,
        })
    } else {
        None
    };
    let sub_items: Vec<SubscriptionItem> = items
        .iter()
        .map(|(p, q)| SubscriptionItem {
            id: ids.next("si"),
            object: Lit("subscription_item"),
            billing_thresholds: Null,
            created: start,
            current_period_end: 0,
            current_period_start: 0,
            discounts: vec![],
            metadata: Metadata::new(),
            plan: Plan::from_price(p),
            price: p.clone(),
            quantity: *q,
            subscription: sub_id.clone(),
            tax_rates: EmptyList,
        })
        .collect();
    let mut sub = crate::api::new_subscription(
        sub_id.clone(),
        c.id.clone(),
        cur.to_string(),
        start,
        sub_items,
        discount,
    );
    sub.status = real_status;
    sub.trial_start = trial_end.map(|_| start);
    sub.trial_end = trial_end;
    sub.billing_cycle_anchor = trial_end.unwrap_or(start);
    sub.trial_will_end_sent = trial_end.is_some_and(|t| t - 3 * DAY <= now);
    let pm = c.invoice_settings.default_payment_method.clone();
    let decline_code = pm
        .as_ref()
        .and_then(|p| book.payment_methods.get(p))
        .and_then(|p| p.decline.clone())
        .unwrap_or_else(|| "card_declined".into());
    let mut delinquent = false;
    let h = History {
        sub_id: sub_id.clone(),
        customer: c,
        pm,
        cur,
        decline: decline_code,
    };

    // Trial invoice ($0).
    if let Some(te) = trial_end {
        h.invoice(
            book,
            ids,
            rng,
            &sub,
            inv_seq,
            start,
            start,
            te,
            "subscription_create",
            Pay::Free,
            now,
        );
    }
    match real_status {
        "trialing" => sub.set_period(start, trial_end.unwrap_or(start)),
        "paused" => {
            let te = trial_end.unwrap_or(start);
            sub.set_period(te, add_interval(te, iv, ic));
            sub.pause_collection = None;
        }
        "incomplete" | "incomplete_expired" => {
            let end = add_interval(start, iv, ic);
            sub.set_period(start, end);
            let mode = if real_status == "incomplete" {
                Pay::FirstFailedOpen
            } else {
                Pay::FirstFailedVoid
            };
            h.invoice(
                book,
                ids,
                rng,
                &sub,
                inv_seq,
                start,
                start,
                end,
                "subscription_create",
                mode,
                now,
            );
            if real_status == "incomplete_expired" {
                sub.ended_at = Some(start + engine::INCOMPLETE_WINDOW);
            }
        }
        _ => {
            // Regular periods from the anchor.
            let canceled = real_status == "canceled";
            let churn_at = if canceled {
                // Ended some time in the last year, after at least one period.
                let first_end = add_interval(anchor, iv, ic);
                Some(
                    rng.range(first_end.min(now - DAY), now - DAY)
                        .max(anchor + 1),
                )
            } else {
                None
            };
            let involuntary = canceled && rng.chance(0.4);
            let mut t = anchor;
            let mut first = trial_end.is_none();
            let history_floor = now - 366 * DAY;
            loop {
                let end = add_interval(t, iv, ic);
                let is_current = end > now || churn_at.is_some_and(|ch| end > ch);
                let mode = if is_current {
                    match real_status {
                        "past_due" => Pay::FailingOpen(false),
                        "unpaid" => Pay::FailingOpen(true),
                        _ if churn_at.is_some() && involuntary => Pay::FailingClosed,
                        _ if paused_collection => Pay::Void,
                        _ if t > now - 3600 && rng.chance(0.5) => Pay::Draft,
                        _ => Pay::Paid(false),
                    }
                } else if matches!(profile, Profile::Recovering) && rng.chance(0.35)
                    || rng.chance(0.03)
                {
                    Pay::Paid(true)
                } else {
                    Pay::Paid(false)
                };
                if t >= history_floor || is_current {
                    let reason = if first {
                        "subscription_create"
                    } else {
                        "subscription_cycle"
                    };
                    if h.invoice(book, ids, rng, &sub, inv_seq, t, t, end, reason, mode, now) {
                        delinquent = true;
                    }
                }
                first = false;
                sub.set_period(t, end);
                if is_current {
                    break;
                }
                t = end;
            }
            if let Some(ch) = churn_at {
                sub.status = "canceled";
                sub.canceled_at = Some(if involuntary {
                    ch
                } else {
                    ch - rng.range(0, 20 * DAY)
                });
                sub.ended_at = Some(ch);
                sub.cancellation_details.reason = Some(
                    if involuntary {
                        "payment_failed"
                    } else {
                        "cancellation_requested"
                    }
                    .into(),
                );
                if !involuntary && rng.chance(0.5) {
                    sub.cancellation_details.feedback = Some(
                        (*rng.pick(&[
                            "too_expensive",
                            "missing_features",
                            "switched_service",
                            "unused",
                        ]))
                        .into(),
                    );
                }
                delinquent = false;
            }
            if cape {
                sub.cancel_at_period_end = true;
                sub.cancel_at = Some(sub.period().1);
                sub.canceled_at = Some(now - rng.range(0, 10 * DAY));
                sub.cancellation_details.reason = Some("cancellation_requested".into());
            }
            if paused_collection {
                sub.pause_collection = Some(PauseCollection {
                    behavior: "void".into(),
                    resumes_at: None,
                });
            }
        }
    }
    // latest_invoice
    sub.latest_invoice = book
        .invoices
        .ids_for_customer(&c.id)
        .into_iter()
        .rev()
        .find(|i| {
            book.invoices
                .get(i)
                .is_some_and(|inv| inv.subscription.as_deref() == Some(sub_id.as_str()))
        });
    if rng.chance(0.1) {
        sub.metadata
            .insert("plan_tier".into(), format!("tier_{plan_idx}"));
    }
    book.subscriptions.push_unsorted(sub);
    delinquent
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Pay {
    /// $0 invoice.
    Free,
    /// Paid; `true` = after one or two failed attempts.
    Paid(bool),
    /// Open with failed attempts; `true` = retries exhausted (unpaid).
    FailingOpen(bool),
    /// Four failed attempts then closed (involuntary churn).
    FailingClosed,
    /// First invoice failed once and left open (incomplete).
    FirstFailedOpen,
    /// First invoice failed once and voided (incomplete_expired).
    FirstFailedVoid,
    Void,
    Draft,
}

struct History<'a> {
    sub_id: String,
    customer: &'a Customer,
    pm: Option<String>,
    cur: &'a str,
    decline: String,
}

impl History<'_> {
    /// Writes one invoice with its payment intent and charges; returns whether it is
    /// open with failed attempts.
    #[allow(clippy::too_many_arguments)]
    fn invoice(
        &self,
        book: &mut Book,
        ids: &mut IdGen,
        rng: &mut Rng,
        sub: &Subscription,
        seq: &mut i64,
        created: i64,
        period_start: i64,
        period_end: i64,
        reason: &'static str,
        pay: Pay,
        now: i64,
    ) -> bool {
        let inv_id = ids.next("in");
        let mut lines = vec![];
        let mut subtotal = 0;
        for it in &sub.items.data {
            let amount = if pay == Pay::Free {
                0
            } else {
                engine::item_amount(&it.price, it.quantity.unwrap_or(1))
            };
            subtotal += amount;
            lines.push(engine::subscription_line(engine::SubscriptionLine {
                id: ids.next("il"),
                invoice: inv_id.clone(),
                subscription: self.sub_id.clone(),
                currency: self.cur.to_string(),
                item: it,
                amount,
                description: format!(
                    "{} × {}",
                    it.quantity.unwrap_or(1),
                    it.price.nickname.clone().unwrap_or_default()
                ),
                quantity: it.quantity.or(Some(0)),
                period: (period_start, period_end),
            }));
        }
        let mut discount_amounts = vec![];
        let mut discounts = vec![];
        if let Some(d) = &sub.discount {
            let first_paid = reason == "subscription_create" || sub.trial_end == Some(created);
            if pay != Pay::Free && engine::discount_applies(d, created, first_paid) {
                discount_amounts.push(DiscountAmount {
                    amount: engine::discount_amount(&d.coupon, subtotal),
                    discount: d.id.clone(),
                });
                discounts.push(d.id.clone());
            }
        }
        let total = subtotal - discount_amounts.iter().map(|d| d.amount).sum::<i64>();
        let number = format!("{}-{:04}", self.customer.invoice_prefix, *seq);
        *seq += 1;
        let mut inv = engine::new_invoice(engine::NewInvoice {
            id: inv_id.clone(),
            customer: self.customer.id.clone(),
            customer_email: self.customer.email.clone(),
            customer_name: self.customer.name.clone(),
            account_name: book.account.business_profile.name.clone(),
            currency: self.cur.to_string(),
            created,
            period_start,
            period_end,
            billing_reason: reason,
            subscription: Some(self.sub_id.clone()),
            lines,
            subtotal,
            total,
            discount_amounts,
            discounts,
            number,
        });
        if total == 0 || pay == Pay::Free {
            return false;
        }
        if pay == Pay::Draft {
            inv.status = "draft";
            inv.number = None;
            inv.status_transitions.finalized_at = None;
            inv.automatically_finalizes_at = Some(created + 3600);
            inv.next_payment_attempt = Some(created + 3600);
            inv.attempted = false;
            inv.effective_at = None;
            book.invoices.push_unsorted(inv);
            return false;
        }
        let failures: Vec<i64> = match pay {
            Pay::Paid(true) => {
                let n = rng.range(1, 2);
                (0..n).map(|i| retry_time(created, i)).collect()
            }
            Pay::FailingOpen(false) => (0..4)
                .map(|i| retry_time(created, i))
                .filter(|t| *t <= now)
                .take(3)
                .collect(),
            Pay::FailingOpen(true) | Pay::FailingClosed => {
                (0..4).map(|i| retry_time(created, i)).collect()
            }
            Pay::FirstFailedOpen | Pay::FirstFailedVoid => vec![created],
            _ => vec![],
        };
        let pi_id = ids.next("pi");
        let pm = self
            .pm
            .as_ref()
            .and_then(|p| book.payment_methods.get(p))
            .cloned();
        let mut pi = engine::new_payment_intent(
            pi_id.clone(),
            created,
            total,
            self.cur,
            &self.customer.id,
            self.pm.clone(),
            Some(inv_id.clone()),
            ids.token("", 24),
        );
        let mut last_charge = None;
        for t in &failures {
            let ch_id = ids.next("ch");
            let ch = engine::new_charge(
                ch_id.clone(),
                *t,
                total,
                self.cur,
                &self.customer.id,
                pm.as_ref(),
                Some(pi_id.clone()),
                Some(inv_id.clone()),
                Some(&self.decline),
            );
            book.charges.push_unsorted(ch);
            pi.last_payment_error = Some(LastPaymentError {
                charge: ch_id.clone(),
                code: crate::error::card_error_code(&self.decline).into(),
                decline_code: Some(self.decline.clone()),
                doc_url: "https://stripe.com/docs/error-codes/card-declined".into(),
                message: crate::error::decline_message(&self.decline).into(),
                payment_method: pm.clone(),
                kind: Lit("card_error"),
            });
            last_charge = Some(ch_id);
        }
        inv.attempt_count = failures.len() as i64;
        inv.attempted = true;
        let open_failing = matches!(pay, Pay::FailingOpen(_));
        match pay {
            Pay::Paid(_) => {
                let paid_at = retry_time(created, failures.len() as i64) + rng.range(1, 120);
                let ch_id = ids.next("ch");
                let ch = engine::new_charge(
                    ch_id.clone(),
                    paid_at,
                    total,
                    self.cur,
                    &self.customer.id,
                    pm.as_ref(),
                    Some(pi_id.clone()),
                    Some(inv_id.clone()),
                    None,
                );
                book.charges.push_unsorted(ch);
                pi.status = "succeeded";
                pi.amount_received = total;
                pi.last_payment_error = None;
                last_charge = Some(ch_id);
                inv.attempt_count += 1;
                inv.status = "paid";
                inv.amount_paid = total;
                inv.amount_remaining = 0;
                inv.next_payment_attempt = None;
                inv.auto_advance = false;
                inv.status_transitions.paid_at = Some(paid_at);
            }
            Pay::FailingOpen(exhausted) => {
                inv.next_payment_attempt = if exhausted {
                    None
                } else {
                    Some(retry_time(created, failures.len() as i64))
                };
                if exhausted && rng.chance(0.3) {
                    inv.status = "uncollectible";
                    inv.status_transitions.marked_uncollectible_at = failures.last().copied();
                }
            }
            Pay::FailingClosed => {
                inv.next_payment_attempt = None;
                if rng.chance(0.5) {
                    inv.status = "uncollectible";
                    inv.status_transitions.marked_uncollectible_at = failures.last().copied();
                } else {
                    inv.status = "void";
                    inv.status_transitions.voided_at = failures.last().copied();
                }
            }
            Pay::FirstFailedOpen => inv.next_payment_attempt = None,
            Pay::FirstFailedVoid => {
                inv.next_payment_attempt = None;
                inv.status = "void";
                inv.status_transitions.voided_at = Some(created + engine::INCOMPLETE_WINDOW);
            }
            Pay::Void => {
                inv.next_payment_attempt = None;
                inv.attempted = false;
                inv.status = "void";
                inv.status_transitions.voided_at = Some(created + 60);
            }
            Pay::Free | Pay::Draft => {}
        }
        pi.latest_charge = last_charge.clone();
        inv.charge = last_charge;
        inv.payment_intent = Some(pi_id);
        book.payment_intents.push_unsorted(pi);
        let delinquent = open_failing && inv.status == "open";
        book.invoices.push_unsorted(inv);
        delinquent
    }
}

/// When the i-th attempt (0 = first) on an invoice created at `t` happens.
fn retry_time(t: i64, i: i64) -> i64 {
    let mut at = t;
    for gap in engine::RETRY_GAPS_DAYS.iter().take(i.max(0) as usize) {
        at += gap * DAY;
    }
    at
}

// ------------------------------------------------------------------ truth

/// What a correct sync must conclude, per customer and in total.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    pub seed: u64,
    pub now: i64,
    pub api_version: String,
    pub platform_account: String,
    pub customer_count: usize,
    /// The rules the MRR figures follow (documented choices).
    pub mrr_rules: BTreeMap<String, String>,
    pub totals: Totals,
    pub companies: Vec<CompanyTruth>,
    pub customers: Vec<CustomerTruth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Totals {
    pub mrr: BTreeMap<String, i64>,
    pub subscriptions_by_status: BTreeMap<String, usize>,
    pub invoices_by_status: BTreeMap<String, usize>,
    pub invoices: usize,
    pub charges: usize,
    pub failed_payment_attempts: usize,
    pub customers_delinquent: usize,
    pub cards_expiring_soon: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompanyTruth {
    pub company_id: String,
    pub name: String,
    pub domain: String,
    pub customers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomerTruth {
    pub customer: String,
    /// Stripe account holding the customer (platform or connected).
    pub account: String,
    /// The matcher's label: the company this customer belongs to.
    pub company_id: String,
    pub company_name: String,
    pub company_domain: String,
    pub email: Option<String>,
    pub freemail: bool,
    pub has_metadata_account_id: bool,
    pub currency: String,
    pub delinquent: bool,
    pub subscriptions: Vec<SubscriptionTruth>,
    pub mrr: BTreeMap<String, i64>,
    pub invoice_counts: BTreeMap<String, usize>,
    pub failed_payment_attempts: usize,
    pub failed_payment_attempts_30d: usize,
    pub last_successful_charge_at: Option<i64>,
    pub cards: Vec<CardTruth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubscriptionTruth {
    pub id: String,
    pub status: String,
    pub mrr: i64,
    pub currency: String,
    pub cancel_at_period_end: bool,
    pub paused_collection: bool,
    pub interval: String,
    pub interval_count: i64,
    pub coupon_duration: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CardTruth {
    pub payment_method: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub is_default: bool,
    pub expired: bool,
    /// Expires within the current or next calendar month (and is not expired yet).
    pub expiring_soon: bool,
}

fn mrr_rules() -> BTreeMap<String, String> {
    [
        ("counted_statuses", "active, past_due (pause_collection set counts 0)"),
        ("zero_statuses", "trialing, incomplete, incomplete_expired, unpaid, canceled, paused"),
        ("metered", "0"),
        ("normalisation", "month/N ÷N; year/N ÷12N; week/N ×52÷12÷N; day/N ×365÷12÷N"),
        ("tiers", "evaluated at the quantity (volume: one tier; graduated: sum), flat amounts included"),
        ("coupons", "forever reduces (percent, or amount_off per interval floored at 0); once and repeating do not"),
        ("cancel_at_period_end", "counts 0 once cancellation is requested (Stripe's default)"),
        ("rounding", "exact rational per subscription, rounded once half-up to the minor unit; a customer's MRR is the sum of its subscriptions' (totals round once over everything)"),
        ("currencies", "per currency in minor units (jpy is zero-decimal); never converted"),
        ("failed_payment_attempts", "charges with status=failed"),
        ("expiring_soon", "card expires at the end of the current or next calendar month, not yet expired"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn compute_truth(
    state: &State,
    opts: &SeedOptions,
    now: i64,
    labels: &HashMap<String, Company>,
) -> Truth {
    let (ny, nm) = ym(now);
    let soon_limit = if nm == 12 { (ny + 1, 1) } else { (ny, nm + 1) };
    let mut totals = Totals::default();
    let mut companies: BTreeMap<String, CompanyTruth> = BTreeMap::new();
    let mut customers = vec![];
    let mut accounts: Vec<&String> = state.books.keys().collect();
    accounts.sort();
    let mut all_subs: Vec<&Subscription> = vec![];
    for acct in accounts {
        let book = &state.books[acct];
        for cid in book.customers.ids() {
            let Some(c) = book.customers.get(&cid) else {
                continue;
            };
            let Some(comp) = labels.get(&cid) else {
                continue;
            };
            let subs: Vec<&Subscription> = book
                .subscriptions
                .ids_for_customer(&cid)
                .iter()
                .filter_map(|s| book.subscriptions.get(s))
                .collect();
            all_subs.extend(subs.iter().copied());
            let mut invoice_counts = BTreeMap::new();
            for i in book.invoices.ids_for_customer(&cid) {
                if let Some(inv) = book.invoices.get(&i) {
                    *invoice_counts.entry(inv.status.to_string()).or_insert(0) += 1;
                    *totals
                        .invoices_by_status
                        .entry(inv.status.to_string())
                        .or_insert(0) += 1;
                    totals.invoices += 1;
                }
            }
            let charges: Vec<&Charge> = book
                .charges
                .ids_for_customer(&cid)
                .iter()
                .filter_map(|i| book.charges.get(i))
                .collect();
            totals.charges += charges.len();
            let failed = charges.iter().filter(|c| c.status == "failed").count();
            let failed_30d = charges
                .iter()
                .filter(|c| c.status == "failed" && c.created > now - 30 * DAY && c.created <= now)
                .count();
            totals.failed_payment_attempts += failed;
            let last_ok = charges
                .iter()
                .filter(|c| c.status == "succeeded")
                .map(|c| c.created)
                .max();
            let default_pm = c.invoice_settings.default_payment_method.clone();
            let cards: Vec<CardTruth> = book
                .payment_methods
                .ids_for_customer(&cid)
                .iter()
                .filter_map(|i| book.payment_methods.get(i))
                .map(|pm| {
                    let expired = engine::card_expired(&pm.card, now);
                    let soon = !expired && (pm.card.exp_year, pm.card.exp_month) <= soon_limit;
                    CardTruth {
                        payment_method: pm.id.clone(),
                        brand: pm.card.brand.clone(),
                        last4: pm.card.last4.clone(),
                        exp_month: pm.card.exp_month,
                        exp_year: pm.card.exp_year,
                        is_default: default_pm.as_deref() == Some(pm.id.as_str()),
                        expired,
                        expiring_soon: soon,
                    }
                })
                .collect();
            totals.cards_expiring_soon += cards.iter().filter(|c| c.expiring_soon).count();
            let sub_truth: Vec<SubscriptionTruth> = subs
                .iter()
                .map(|s| {
                    *totals
                        .subscriptions_by_status
                        .entry(s.status.to_string())
                        .or_insert(0) += 1;
                    let (iv, n) = s.interval();
                    SubscriptionTruth {
                        id: s.id.clone(),
                        status: s.status.to_string(),
                        mrr: crate::mrr::subscription_mrr(s).round(),
                        currency: s.currency.clone(),
                        cancel_at_period_end: s.cancel_at_period_end,
                        paused_collection: s.pause_collection.is_some(),
                        interval: iv.as_str().to_string(),
                        interval_count: n,
                        coupon_duration: s.discount.as_ref().map(|d| d.coupon.duration.to_string()),
                    }
                })
                .collect();
            if c.delinquent {
                totals.customers_delinquent += 1;
            }
            let email = c.email.clone();
            let freemail = email
                .as_deref()
                .is_some_and(|e| FREEMAIL.iter().any(|d| e.ends_with(&format!("@{d}"))));
            companies
                .entry(comp.id.clone())
                .or_insert_with(|| CompanyTruth {
                    company_id: comp.id.clone(),
                    name: comp.name.clone(),
                    domain: comp.domain.clone(),
                    customers: vec![],
                })
                .customers
                .push(cid.clone());
            customers.push(CustomerTruth {
                customer: cid.clone(),
                account: acct.clone(),
                company_id: comp.id.clone(),
                company_name: comp.name.clone(),
                company_domain: comp.domain.clone(),
                email,
                freemail,
                has_metadata_account_id: c.metadata.contains_key("cscx_account_id"),
                currency: c.currency.clone().unwrap_or_default(),
                delinquent: c.delinquent,
                // The sum of the subscriptions' rounded MRR, so a customer's figure is what its
                // subscriptions add up to on screen (the billing view's rule).
                mrr: sub_truth.iter().fold(BTreeMap::new(), |mut acc, s| {
                    *acc.entry(s.currency.clone()).or_insert(0) += s.mrr;
                    acc
                }),
                subscriptions: sub_truth,
                invoice_counts,
                failed_payment_attempts: failed,
                failed_payment_attempts_30d: failed_30d,
                last_successful_charge_at: last_ok,
                cards,
            });
        }
    }
    totals.mrr = crate::mrr::mrr_by_currency(all_subs.iter().copied());
    Truth {
        seed: opts.seed,
        now,
        api_version: API_VERSION.to_string(),
        platform_account: state.platform.clone(),
        customer_count: customers.len(),
        mrr_rules: mrr_rules(),
        totals,
        companies: companies.into_values().collect(),
        customers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_truth() {
        let (_, a) = generate(120, 42);
        let (_, b) = generate(120, 42);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let (_, c) = generate(120, 43);
        assert_ne!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&c).unwrap()
        );
    }

    #[test]
    fn realistic_mix() {
        let (state, t) = generate(600, 7);
        assert_eq!(t.customer_count, 600);
        let st = &t.totals.subscriptions_by_status;
        for s in ["active", "trialing", "past_due", "unpaid", "canceled"] {
            assert!(st.get(s).copied().unwrap_or(0) > 0, "no {s} in {st:?}");
        }
        assert!(t.totals.mrr.contains_key("jpy") && t.totals.mrr.contains_key("usd"));
        assert!(t.totals.failed_payment_attempts > 0);
        assert!(t.totals.cards_expiring_soon > 0);
        assert!(t.companies.iter().any(|c| c.customers.len() > 1));
        assert!(t.customers.iter().any(|c| c.freemail));
        let book = state.platform_book();
        // ~12 months of invoices per customer on average (between 5 and 20).
        let per = book.invoices.len() as f64 / 600.0;
        assert!((5.0..20.0).contains(&per), "{per}");
        // Every invoice's subscription and customer exist.
        for inv in book.invoices.values() {
            assert!(book.customers.contains(&inv.customer));
            assert!(book
                .subscriptions
                .contains(inv.subscription.as_deref().unwrap()));
            assert!(inv.amount_due >= 0 && inv.amount_paid <= inv.amount_due);
        }
        // Sum of per-customer MRR equals the total within rounding (one unit per customer).
        let usd: i64 = t.customers.iter().filter_map(|c| c.mrr.get("usd")).sum();
        assert!((usd - t.totals.mrr["usd"]).abs() <= 600);
        // past_due customers are delinquent with open, attempted invoices.
        for c in &t.customers {
            if c.subscriptions.iter().any(|s| s.status == "past_due") {
                assert!(c.delinquent, "{}", c.customer);
                assert!(c.failed_payment_attempts > 0);
            }
        }
    }

    #[test]
    fn connected_accounts_are_seeded() {
        let (state, t) = generate_with(&SeedOptions {
            customers: 10,
            seed: 3,
            connected_accounts: 2,
            connected_customers: 5,
            now: None,
        });
        assert_eq!(state.unclaimed_accounts.len(), 2);
        assert_eq!(t.customer_count, 20);
        assert_eq!(
            t.customers
                .iter()
                .filter(|c| c.account != t.platform_account)
                .count(),
            10
        );
    }
}

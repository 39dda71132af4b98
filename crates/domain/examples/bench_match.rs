//! Speed check of matching: 10,000 synthetic Stripe customers against 10,000
//! accounts, generated deterministically. Prints the CPU time of building the
//! index and deciding every customer, and how the decisions compare with the
//! generated truth.
//!
//! `cargo run --release -p domain --example bench_match`
//! (target: well under 2 s of CPU; not asserted anywhere).

use std::time::Instant;

use domain::matching::{
    AccountCandidate, AccountId, AccountIndex, CustomerEvidence, MatchConfig, MatchDecision,
};

const ACCOUNTS: usize = 10_000;
const CUSTOMERS: usize = 10_000;

/// SplitMix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SYLLABLES: &[&str] = &[
    "ac", "me", "glo", "bex", "ini", "tech", "nor", "th", "wind", "zen", "ith", "vel", "ox", "qua",
    "ntum", "ster", "ling", "bri", "co", "dyn", "amo", "pix", "el", "sol", "ara", "tri", "vex",
    "lum", "ina", "kor", "bit", "hub", "ly", "fy", "ora", "mag", "net", "ix", "so", "né",
];
const INDUSTRY: &[&str] = &[
    "Software",
    "Labs",
    "Systems",
    "Solutions",
    "Analytics",
    "Health",
    "Logistics",
    "Capital",
    "Media",
    "Foods",
    "Energy",
    "Robotics",
    "Security",
    "Cloud",
    "Partners",
    "Studio",
];
const SUFFIXES: &[&str] = &[
    "Inc", "Inc.", "LLC", "Ltd", "GmbH", "SA", "B.V.", "", "", "Corp.",
];
const TLDS: &[&str] = &["com", "io", "co.uk", "de", "fr", "com.au"];
const FREE: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "gmx.de",
];

struct Truth {
    account: Option<usize>,
}

fn brand(rng: &mut Rng, i: usize) -> String {
    let mut word = String::new();
    for _ in 0..2 + rng.below(2) {
        word.push_str(rng.pick(SYLLABLES));
    }
    // Keep brands distinct so that the generated truth is unambiguous.
    word.push_str(&base26(i));
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn base26(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    String::from_utf8(out).expect("ascii")
}

fn generate() -> (Vec<AccountCandidate>, Vec<(CustomerEvidence, Truth)>) {
    let mut rng = Rng(42);
    let mut accounts = Vec::with_capacity(ACCOUNTS);
    let mut brands = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let brand = brand(&mut rng, i);
        let industry = if rng.below(3) > 0 {
            rng.pick(INDUSTRY)
        } else {
            ""
        };
        let name = format!("{brand} {industry} {}", rng.pick(SUFFIXES));
        let host = brand.to_lowercase().replace('é', "e");
        let domain = format!("{host}.{}", rng.pick(TLDS));
        let domains = if rng.below(10) == 0 {
            vec![format!("https://www.{domain}/about")]
        } else {
            vec![domain]
        };
        let external_ids = if rng.below(3) == 0 {
            vec![format!("sf_{i}")]
        } else {
            vec![]
        };
        accounts.push(AccountCandidate {
            id: AccountId::new(format!("acc_{i}")),
            name,
            domains,
            external_ids,
        });
        brands.push((brand, industry));
    }
    let mut customers = Vec::with_capacity(CUSTOMERS);
    for i in 0..CUSTOMERS {
        let j = rng.below(ACCOUNTS);
        let account = &accounts[j];
        let (brand, industry) = &brands[j];
        let mut evidence = CustomerEvidence::default();
        let domain = account.domains[0]
            .trim_start_matches("https://www.")
            .trim_end_matches("/about")
            .to_owned();
        let truth = match i % 10 {
            0..=2 => {
                let key = if rng.below(2) == 0 {
                    "cscx_account_id"
                } else {
                    "customer_id"
                };
                let value = account
                    .external_ids
                    .first()
                    .cloned()
                    .unwrap_or_else(|| account.id.to_string());
                evidence.metadata.insert(key.to_owned(), value);
                evidence.email = Some(format!("x{i}@{}", rng.pick(FREE)));
                Some(j)
            }
            3..=5 => {
                let sub = if rng.below(4) == 0 { "billing." } else { "" };
                evidence.email = Some(format!("ap{i}@{sub}{domain}"));
                evidence.name = Some(account.name.to_uppercase());
                Some(j)
            }
            6 | 7 => {
                evidence.email = Some(format!("founder{i}@{}", rng.pick(FREE)));
                evidence.name = Some(format!(
                    "{} {industry}, {}",
                    brand.to_uppercase(),
                    rng.pick(SUFFIXES)
                ));
                Some(j)
            }
            8 => {
                evidence.email = Some(format!("billing{i}@reseller-{}.com", i % 7));
                evidence.name = Some(format!("{brand} {industry}"));
                Some(j)
            }
            _ => {
                evidence.email = Some(format!("someone{i}@gmail.com"));
                evidence.name = Some(format!("Unknown Venture {} Holdings", base26(i + 7_919)));
                None
            }
        };
        customers.push((evidence, Truth { account: truth }));
    }
    (accounts, customers)
}

/// CPU time of this thread, from the kernel's scheduler statistics; wall time
/// when unavailable.
fn cpu_seconds(wall_start: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or_else(|| wall_start.elapsed().as_secs_f64())
}

fn main() {
    let (accounts, customers) = generate();
    let config = MatchConfig::default();

    let wall = Instant::now();
    let cpu_before = cpu_seconds(wall);
    let index = AccountIndex::build(&accounts);
    let decisions: Vec<MatchDecision> = customers
        .iter()
        .map(|(evidence, _)| index.decide(evidence, &config))
        .collect();
    let cpu = cpu_seconds(wall) - cpu_before;
    let wall = wall.elapsed().as_secs_f64();

    let (mut right, mut wrong, mut ambiguous, mut unmatched, mut expected_links) = (0, 0, 0, 0, 0);
    for ((_, truth), decision) in customers.iter().zip(&decisions) {
        expected_links += usize::from(truth.account.is_some());
        match decision {
            MatchDecision::Matched(link) => {
                if truth.account.map(|j| accounts[j].id == link.account_id) == Some(true) {
                    right += 1;
                } else {
                    wrong += 1;
                }
            }
            MatchDecision::Ambiguous { .. } => ambiguous += 1,
            MatchDecision::Unmatched { .. } => unmatched += 1,
        }
    }
    let precision = right as f64 / (right + wrong).max(1) as f64;
    let recall = right as f64 / expected_links.max(1) as f64;
    println!(
        "accounts {ACCOUNTS}, customers {CUSTOMERS}: linked {} (right {right}, wrong {wrong}), \
         ambiguous {ambiguous}, unmatched {unmatched}",
        right + wrong
    );
    println!("precision {precision:.4}, recall {recall:.4} (synthetic data)");
    println!("wall {wall:.3} s");
    println!("RESULT match_10k_cpu_s {cpu:.3}");
}

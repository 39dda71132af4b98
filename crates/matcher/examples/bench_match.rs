//! `make bench-match`: matching quality and speed.
//!
//! 1. The Stripe fake's scenario generator makes a 10,000-customer book; every customer is
//!    labelled with the company it was made for. CSCX accounts are those companies (name and
//!    domain). Precision and recall per rule and overall, automatic links through free mail.
//! 2. The hand-written tricky set (`crates/matcher/data/tricky_set.json`).
//! 3. CPU seconds to index the 10k accounts and decide the 10k customers (one thread).
//!
//! Ends with `RESULT match_precision`, `RESULT match_recall` (generated set) and
//! `RESULT match_10k_cpu_s`. The generated book (≈700 MB inside the fake) is written to a
//! file and matched by a child process, so `match_rss_mb` is matching's own peak. Targets: precision ≥ 0.995, recall ≥ 0.95, 0 free-mail links,
//! ≤ 2 s CPU, RSS ≤ 200 MB.

use std::time::Instant;

use domain::matching::{AccountIndex, CustomerEvidence, MatchConfig, MatchDecision};
use matcher::evaluation::{decide_all, from_book, score, tricky_set, LabelledSet, Report};

const CUSTOMERS: usize = 10_000;

/// CPU time of this thread (scheduler statistics); wall time when unavailable.
fn cpu_seconds(wall_start: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or_else(|| wall_start.elapsed().as_secs_f64())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn generated_set() -> LabelledSet {
    let (state, truth) = stripe_fake::generate(CUSTOMERS, 42);
    let book = &state.books[&truth.platform_account];
    let companies: Vec<(String, String, String)> = truth
        .companies
        .iter()
        .map(|c| (c.company_id.clone(), c.name.clone(), c.domain.clone()))
        .collect();
    let label: std::collections::HashMap<&str, &str> = truth
        .customers
        .iter()
        .map(|c| (c.customer.as_str(), c.company_id.as_str()))
        .collect();
    let customers: Vec<(String, CustomerEvidence, String)> = book
        .customers
        .values()
        .filter_map(|c| {
            let company = label.get(c.id.as_str())?;
            Some((
                c.id.clone(),
                CustomerEvidence {
                    metadata: c
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    email: c.email.clone(),
                    name: c.name.clone(),
                    description: c.description.clone(),
                    ..Default::default()
                },
                (*company).to_owned(),
            ))
        })
        .collect();
    from_book(&companies, &customers)
}

fn print(title: &str, report: &Report) {
    println!(
        "{title}: {} customers, {} with an account; linked {} (right {}, wrong {}), ambiguous {}, unmatched {}",
        report.customers,
        report.expected_links,
        report.overall.right + report.overall.wrong,
        report.overall.right,
        report.overall.wrong,
        report.ambiguous,
        report.unmatched
    );
    println!(
        "  {:<14} {:>7} {:>7} {:>10}",
        "rule", "right", "wrong", "precision"
    );
    for (method, counts) in &report.by_method {
        println!(
            "  {:<14} {:>7} {:>7} {:>10.4}",
            method,
            counts.right,
            counts.wrong,
            counts.precision()
        );
    }
    println!(
        "  overall        precision {:.4}  recall {:.4}  free-mail links {}",
        report.precision(),
        report.recall(),
        report.free_mail_links
    );
}

fn main() {
    let config = MatchConfig::default();
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, path] = args.as_slice() {
        if flag == "--decide" {
            return decide_child(path, &config);
        }
    }

    let tricky = tricky_set();
    let tricky_report = score(&tricky, &decide_all(&tricky, &config));
    print("tricky set", &tricky_report);
    for (customer, expected, got, why) in &tricky_report.mistakes {
        println!("  miss {customer}: expected {expected:?}, got {got:?} ({why})");
    }

    let set = generated_set();
    let path = std::env::temp_dir().join(format!("bench-match-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&set).expect("set serialises")).expect("temp file");
    let child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--decide")
        .arg(&path)
        .output()
        .expect("child runs");
    let _ = std::fs::remove_file(&path);
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    for line in out.lines().filter(|l| !l.starts_with("RESULT ")) {
        println!("{line}");
    }
    println!(
        "RESULT match_tricky_precision {:.4}",
        tricky_report.precision()
    );
    println!("RESULT match_tricky_recall {:.4}", tricky_report.recall());
    for line in out.lines().filter(|l| l.starts_with("RESULT ")) {
        println!("{line}");
    }
}

/// The measured part, in a process of its own.
fn decide_child(path: &str, config: &MatchConfig) {
    let set: LabelledSet =
        serde_json::from_slice(&std::fs::read(path).expect("set file")).expect("set parses");
    let wall = Instant::now();
    let cpu_before = cpu_seconds(wall);
    let index = AccountIndex::build(&set.accounts);
    let decisions: Vec<MatchDecision> = set
        .customers
        .iter()
        .map(|c| index.decide(&c.evidence, config))
        .collect();
    let cpu = cpu_seconds(wall) - cpu_before;
    let wall = wall.elapsed().as_secs_f64();
    let report = score(&set, &decisions);
    println!();
    println!("generated set ({} accounts):", set.accounts.len());
    print("generated set", &report);
    let mut shown = 0;
    for (customer, expected, got, _) in &report.mistakes {
        if got.is_some() || shown < 5 {
            let evidence = &set
                .customers
                .iter()
                .find(|c| &c.id == customer)
                .unwrap()
                .evidence;
            println!(
                "  {} {customer}: expected {expected:?}, got {got:?} (email {:?}, name {:?})",
                if got.is_some() { "WRONG" } else { "miss" },
                evidence.email,
                evidence.name
            );
            shown += 1;
        }
    }
    println!(
        "index + decide wall {wall:.3} s, peak RSS {:.0} MB",
        peak_rss_mb()
    );
    println!("RESULT match_free_mail_links {}", report.free_mail_links);
    println!("RESULT match_rss_mb {:.0}", peak_rss_mb());
    println!("RESULT match_precision {:.4}", report.precision());
    println!("RESULT match_recall {:.4}", report.recall());
    println!("RESULT match_10k_cpu_s {cpu:.3}");
}

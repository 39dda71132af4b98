//! Bulk intake of CSCX accounts (`billingctl import-accounts FILE`): CSV with a header row or
//! JSON lines. Every row is validated on its own; a bad row (missing id or name, invalid
//! domain, an id seen twice) is rejected with its line number and changes nothing, the good
//! rows become `CscxAccountUpserted` messages. Message ids are derived from the row's content,
//! so importing the same file twice is harmless.

use std::collections::HashSet;

use contracts::v1::CscxAccountUpserted;
use domain::matching::normalize_website;
use ring::digest;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// `.csv` → CSV; `.jsonl` / `.ndjson` / `.json` → JSON lines.
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".jsonl")
            || lower.ends_with(".ndjson")
            || lower.ends_with(".json")
        {
            Some(Self::JsonLines)
        } else {
            None
        }
    }
}

/// One accepted account and the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub line: usize,
    pub message_id: String,
    pub account: CscxAccountUpserted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
struct Row {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    name: String,
    /// CSV: separated by `;`, `,` or spaces inside the cell; JSON: a string or a list.
    #[serde(default, deserialize_with = "list")]
    domains: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    external_ids: Vec<String>,
    #[serde(default)]
    csm_user_id: String,
}

fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::Many(v)) => v,
        Some(Either::One(s)) => s
            .split([';', ',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

const MAX_ID_LEN: usize = 128;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Parses and validates a whole file for `tenant`.
pub fn parse(text: &str, format: Format, tenant: &str) -> (Vec<Accepted>, Vec<Rejected>) {
    let mut rows: Vec<(usize, Result<Row, String>)> = Vec::new();
    match format {
        Format::JsonLines => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                rows.push((
                    i + 1,
                    serde_json::from_str::<Row>(line)
                        .map_err(|e| format!("not a JSON object: {e}")),
                ));
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .flexible(false)
                .from_reader(text.as_bytes());
            for record in reader.deserialize::<Row>() {
                match record {
                    Ok(row) => rows.push((rows.len() + 2, Ok(row))),
                    Err(e) => {
                        let line = e
                            .position()
                            .map(|p| p.line() as usize)
                            .unwrap_or(rows.len() + 2);
                        rows.push((line, Err(format!("unreadable CSV row: {e}"))));
                    }
                }
            }
        }
    }

    let mut seen = HashSet::new();
    let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
    for (line, row) in rows {
        match validate(row, &mut seen) {
            Ok(account) => {
                let fingerprint = format!("{tenant}|{account:?}");
                let hash = hex::encode(
                    &digest::digest(&digest::SHA256, fingerprint.as_bytes()).as_ref()[..12],
                );
                let message_id = format!("import:{tenant}:{}:{hash}", account.account_id);
                accepted.push(Accepted {
                    line,
                    message_id,
                    account,
                });
            }
            Err(reason) => rejected.push(Rejected { line, reason }),
        }
    }
    (accepted, rejected)
}

fn validate(
    row: Result<Row, String>,
    seen: &mut HashSet<String>,
) -> Result<CscxAccountUpserted, String> {
    let row = row?;
    let id = row.account_id.trim();
    if id.is_empty() {
        return Err("missing account_id".into());
    }
    if !valid_id(id) {
        return Err(format!("invalid account_id `{id}`"));
    }
    if row.name.trim().is_empty() {
        return Err(format!("account {id}: missing name"));
    }
    let mut domains = Vec::new();
    for raw in &row.domains {
        let domain = normalize_website(raw)
            .map_err(|e| format!("account {id}: invalid domain `{raw}` ({e})"))?;
        let domain = domain.as_str().to_string();
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    for ext in &row.external_ids {
        if !valid_id(ext) {
            return Err(format!("account {id}: invalid external id `{ext}`"));
        }
    }
    if !seen.insert(id.to_string()) {
        return Err(format!("duplicate account_id `{id}`"));
    }
    Ok(CscxAccountUpserted {
        account_id: id.to_string(),
        name: row.name.trim().to_string(),
        domains,
        external_ids: row.external_ids,
        csm_user_id: row.csm_user_id.trim().to_string(),
        updated_at_ms: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_validated_one_by_one_with_line_numbers() {
        let csv = "account_id,name,domains,external_ids,csm_user_id\n\
                   acc_1,Acme Inc,https://www.Acme.com;billing.acme.co.uk,cus_legacy_1,csm-7\n\
                   ,No Id Ltd,noid.com,,\n\
                   acc_3,Bad Domain,not a domain!,,\n\
                   acc_1,Acme Again,acme.com,,\n\
                   acc_5,,five.com,,\n\
                   acc_6,Globex,globex.com,,\n";
        let (ok, bad) = parse(csv, Format::Csv, "tenant-a");
        assert_eq!(
            ok.iter()
                .map(|a| (a.line, a.account.account_id.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "acc_1"), (7, "acc_6")]
        );
        assert_eq!(ok[0].account.domains, vec!["acme.com", "acme.co.uk"]);
        assert_eq!(ok[0].account.external_ids, vec!["cus_legacy_1"]);
        assert_eq!(ok[0].account.csm_user_id, "csm-7");
        let lines: Vec<_> = bad.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{bad:?}");
        assert!(bad[0].reason.contains("missing account_id"));
        assert!(bad[1].reason.contains("invalid domain"));
        assert!(bad[2].reason.contains("duplicate"));
        assert!(bad[3].reason.contains("missing name"));
    }

    #[test]
    fn json_lines_accept_lists_or_strings_and_report_bad_lines() {
        let jsonl = "{\"account_id\":\"a1\",\"name\":\"Initech\",\"domains\":[\"initech.com\"]}\n\
                     \n\
                     not json\n\
                     {\"account_id\":\"a2\",\"name\":\"Umbrella\",\"domains\":\"umbrella.com; umbrella.de\"}\n\
                     {\"account_id\":\"a 3\",\"name\":\"Spaces\"}\n";
        let (ok, bad) = parse(jsonl, Format::JsonLines, "t");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].account.domains, vec!["umbrella.com", "umbrella.de"]);
        assert_eq!(bad.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 5]);
    }

    #[test]
    fn message_ids_are_stable_per_content() {
        let csv = "account_id,name,domains\nacc_1,Acme,acme.com\n";
        let (a, _) = parse(csv, Format::Csv, "t");
        let (b, _) = parse(csv, Format::Csv, "t");
        assert_eq!(a[0].message_id, b[0].message_id, "re-import is idempotent");
        let (c, _) = parse(
            "account_id,name,domains\nacc_1,Acme Corp,acme.com\n",
            Format::Csv,
            "t",
        );
        assert_ne!(
            a[0].message_id, c[0].message_id,
            "a changed row is a new message"
        );
        let (d, _) = parse(csv, Format::Csv, "other");
        assert_ne!(a[0].message_id, d[0].message_id);
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::from_path("a.CSV"), Some(Format::Csv));
        assert_eq!(Format::from_path("a.ndjson"), Some(Format::JsonLines));
        assert_eq!(Format::from_path("a.xlsx"), None);
    }
}

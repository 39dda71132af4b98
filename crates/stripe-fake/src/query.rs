//! Stripe's form encoding: `a=1&b[c]=2&expand[]=x&items[0][price]=p`, for query strings
//! and `application/x-www-form-urlencoded` bodies alike. Parsing never fails on
//! malformed input: odd keys are kept verbatim and then rejected as unknown parameters.

use crate::error::ApiError;
use std::collections::BTreeMap;

/// A parsed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum PVal {
    Str(String),
    Map(BTreeMap<String, PVal>),
    List(Vec<PVal>),
}

impl PVal {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PVal::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&PVal> {
        match self {
            PVal::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// Lists come as `x[]=a&x[]=b` or `x[0]=a&x[1]=b` (the SDKs send the latter).
    pub fn as_list(&self) -> Vec<&PVal> {
        match self {
            PVal::List(v) => v.iter().collect(),
            PVal::Map(m) => {
                let mut items: Vec<(u64, &PVal)> = m
                    .iter()
                    .filter_map(|(k, v)| k.parse::<u64>().ok().map(|i| (i, v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                items.into_iter().map(|(_, v)| v).collect()
            }
            PVal::Str(_) => vec![self],
        }
    }
}

/// All parameters of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub root: BTreeMap<String, PVal>,
}

/// Splits `a[b][]` into `["a", "b", ""]`; `None` when brackets are malformed.
fn split_key(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => return Some(vec![key]),
    };
    if head.is_empty() {
        return None;
    }
    let mut parts = vec![head];
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return None;
        }
        let close = rest.find(']')?;
        let inner = &rest[1..close];
        if inner.contains('[') {
            return None;
        }
        parts.push(inner);
        rest = &rest[close + 1..];
    }
    Some(parts)
}

fn insert(map: &mut BTreeMap<String, PVal>, parts: &[&str], value: String) -> Result<(), ()> {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return Err(()),
    };
    if rest.is_empty() {
        map.insert(first.to_string(), PVal::Str(value));
        return Ok(());
    }
    let next_is_append = rest[0].is_empty();
    let slot = map.entry(first.to_string()).or_insert_with(|| {
        if next_is_append {
            PVal::List(vec![])
        } else {
            PVal::Map(BTreeMap::new())
        }
    });
    insert_into(slot, rest, value)
}

fn insert_into(slot: &mut PVal, parts: &[&str], value: String) -> Result<(), ()> {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return Err(()),
    };
    if first.is_empty() {
        // `x[]`: append; `x[][k]` appends a map.
        let list = match slot {
            PVal::List(l) => l,
            _ => return Err(()),
        };
        if rest.is_empty() {
            list.push(PVal::Str(value));
            return Ok(());
        }
        let mut m = BTreeMap::new();
        insert(&mut m, rest, value)?;
        list.push(PVal::Map(m));
        return Ok(());
    }
    match slot {
        PVal::Map(m) => insert(m, parts, value),
        _ => Err(()),
    }
}

impl Params {
    /// Parses form-encoded input. Conflicting shapes (`a=1&a[b]=2`) and malformed keys
    /// keep the raw key at the top level, which later fails as an unknown parameter.
    pub fn parse(input: &str) -> Params {
        let mut p = Params::default();
        p.merge(input);
        p
    }

    pub fn merge(&mut self, input: &str) {
        for (k, v) in url::form_urlencoded::parse(input.as_bytes()) {
            if k.is_empty() {
                continue;
            }
            let ok = match split_key(&k) {
                Some(parts) => insert(&mut self.root, &parts, v.to_string()).is_ok(),
                None => false,
            };
            if !ok {
                self.root.insert(k.to_string(), PVal::Str(v.into_owned()));
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&PVal> {
        self.root.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.root.get(key).and_then(PVal::as_str)
    }

    /// A string parameter that must be a plain value if present.
    pub fn string(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.root.get(key) {
            None => Ok(None),
            Some(PVal::Str(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(
                "parameter_invalid_string",
                key,
                format!("Invalid string: {key} must be a string"),
            )),
        }
    }

    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(ApiError::invalid(
                "parameter_invalid_empty",
                key,
                format!("You passed an empty string for '{key}'. We assume empty values are an attempt to unset a parameter; however '{key}' cannot be unset. You should remove '{key}' from your request or supply a non-empty value."),
            )),
            None => Err(ApiError::missing_param(key)),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.root.get(key) {
            None => Ok(None),
            Some(v) => parse_int(v, key).map(Some),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.string(key)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                "parameter_invalid_boolean",
                key,
                format!("Invalid boolean: {other}"),
            )),
        }
    }

    /// `expand[]=a&expand[]=b` (or `expand[0]=a`) → `["a", "b"]`.
    pub fn expand(&self) -> Result<Vec<String>, ApiError> {
        match self.root.get("expand") {
            None => Ok(vec![]),
            Some(v) => {
                let mut out = vec![];
                for item in v.as_list() {
                    match item.as_str() {
                        Some(s) => out.push(s.to_string()),
                        None => {
                            return Err(ApiError::invalid(
                                "parameter_invalid_string",
                                "expand",
                                "Invalid array: expand must be an array of strings",
                            ))
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// Fails on the first top-level parameter not in `allowed`.
    pub fn check_allowed(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for k in self.root.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::unknown_param(k));
            }
        }
        Ok(())
    }

    /// A `created`-style range filter: `created=123` or `created[gte]=…&created[lt]=…`.
    pub fn range(&self, key: &str) -> Result<Range, ApiError> {
        let mut r = Range::default();
        match self.root.get(key) {
            None => {}
            Some(v @ PVal::Str(_)) => {
                let n = parse_int(v, key)?;
                r.gte = Some(n);
                r.lte = Some(n);
            }
            Some(PVal::Map(m)) => {
                for (op, v) in m {
                    let name = format!("{key}[{op}]");
                    let n = parse_int(v, &name)?;
                    match op.as_str() {
                        "gt" => r.gt = Some(n),
                        "gte" => r.gte = Some(n),
                        "lt" => r.lt = Some(n),
                        "lte" => r.lte = Some(n),
                        _ => return Err(ApiError::unknown_param(&name)),
                    }
                }
            }
            Some(PVal::List(_)) => {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    key,
                    format!("Invalid {key}: must be an integer or a hash"),
                ))
            }
        }
        Ok(r)
    }
}

fn parse_int(v: &PVal, key: &str) -> Result<i64, ApiError> {
    match v {
        PVal::Str(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid_integer(key, s)),
        _ => Err(ApiError::invalid_integer(key, "(not a scalar)")),
    }
}

/// Integer bounds from `created[gt|gte|lt|lte]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl Range {
    pub fn is_empty(&self) -> bool {
        *self == Range::default()
    }

    pub fn contains(&self, x: i64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_lists() {
        let p = Params::parse(
            "limit=3&expand[]=data.customer&expand[]=data.lines&items[0][price]=price_1&items[0][quantity]=2&items[1][price]=price_2&metadata[a%20b]=c+d",
        );
        assert_eq!(p.int("limit").unwrap(), Some(3));
        assert_eq!(p.expand().unwrap(), vec!["data.customer", "data.lines"]);
        let items = p.get("items").unwrap().as_list();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].get("price").unwrap().as_str(), Some("price_1"));
        assert_eq!(items[0].get("quantity").unwrap().as_str(), Some("2"));
        assert_eq!(items[1].get("price").unwrap().as_str(), Some("price_2"));
        assert_eq!(
            p.get("metadata").unwrap().get("a b").unwrap().as_str(),
            Some("c d")
        );
    }

    #[test]
    fn indexed_lists_sort_numerically() {
        let p = Params::parse("expand[10]=k&expand[2]=c&expand[0]=a");
        assert_eq!(p.expand().unwrap(), vec!["a", "c", "k"]);
    }

    #[test]
    fn created_ranges() {
        let p = Params::parse("created[gte]=10&created[lt]=20");
        let r = p.range("created").unwrap();
        assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
        let p = Params::parse("created=15");
        let r = p.range("created").unwrap();
        assert!(r.contains(15) && !r.contains(16));
        let e = Params::parse("created[gte]=abc")
            .range("created")
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("parameter_invalid_integer"));
        assert_eq!(e.param.as_deref(), Some("created[gte]"));
        let e = Params::parse("created[foo]=1")
            .range("created")
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("parameter_unknown"));
    }

    #[test]
    fn malformed_keys_become_unknown_params() {
        let p = Params::parse("a[b=1&[x]=2&c]=3&d[e]f=4&limit=1&limit[x]=2");
        assert!(p.check_allowed(&["limit"]).is_err());
        assert!(p.get("a[b").is_some());
        assert!(p.get("[x]").is_some());
    }

    #[test]
    fn unknown_param_named() {
        let p = Params::parse("limit=2&bogus=1");
        let e = p.check_allowed(&["limit"]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("bogus"));
        assert_eq!(e.status, 400);
    }
}

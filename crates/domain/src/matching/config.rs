//! Tunables of the matching rules.

use serde::{Deserialize, Serialize};

/// Tunables of the matching rules. Every field has a default, so an empty
/// config section is valid; check a loaded config with [`MatchConfig::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchConfig {
    /// Stripe customer metadata keys that hold a CSCX account id (or one of
    /// its external ids), strongest first. Compared case-insensitively.
    /// Default: `cscx_account_id`, `customer_id`.
    pub metadata_keys: Vec<String>,
    /// Confidence of a link through the customer's own `email` domain.
    /// Default 0.95.
    pub email_domain_confidence: f64,
    /// Confidence of a link through an invoice/billing email domain only.
    /// Default 0.9.
    pub invoice_email_domain_confidence: f64,
    /// Lowest company-name similarity that links. Default 0.92.
    pub name_threshold: f64,
    /// Confidence of a company-name link with similarity 1.0; lower
    /// similarities scale it down. Must stay below both email confidences.
    /// Default 0.85.
    pub name_max_confidence: f64,
    /// Two accounts whose company-name scores are within this margin of each
    /// other are ambiguous. Default 0.05.
    pub ambiguity_margin: f64,
    /// Also compare the customer's `description` as a company name.
    /// Default false: descriptions are free text ("Annual plan for Acme").
    pub use_description_as_name: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            metadata_keys: vec!["cscx_account_id".to_owned(), "customer_id".to_owned()],
            email_domain_confidence: 0.95,
            invoice_email_domain_confidence: 0.9,
            name_threshold: 0.92,
            name_max_confidence: 0.85,
            ambiguity_margin: 0.05,
            use_description_as_name: false,
        }
    }
}

/// A [`MatchConfig`] field out of range; names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("matching.{key}: {problem}")]
pub struct MatchConfigError {
    /// The offending key.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl MatchConfig {
    /// Checks ranges and the order of strengths (metadata 1.0 ≥ customer
    /// email ≥ invoice email > company name).
    pub fn validate(&self) -> Result<(), MatchConfigError> {
        let fail = |key, problem: String| Err(MatchConfigError { key, problem });
        if self.metadata_keys.iter().any(|key| key.trim().is_empty()) {
            return fail("metadata_keys", "keys must not be empty".to_owned());
        }
        let unit = [
            ("email_domain_confidence", self.email_domain_confidence),
            (
                "invoice_email_domain_confidence",
                self.invoice_email_domain_confidence,
            ),
            ("name_threshold", self.name_threshold),
            ("name_max_confidence", self.name_max_confidence),
        ];
        for (key, value) in unit {
            if !(value > 0.0 && value <= 1.0) {
                return fail(key, format!("{value} is not in (0, 1]"));
            }
        }
        if !(0.0..0.5).contains(&self.ambiguity_margin) {
            return fail(
                "ambiguity_margin",
                format!("{} is not in [0, 0.5)", self.ambiguity_margin),
            );
        }
        if self.invoice_email_domain_confidence > self.email_domain_confidence {
            return fail(
                "invoice_email_domain_confidence",
                "must not exceed email_domain_confidence".to_owned(),
            );
        }
        if self.name_max_confidence >= self.invoice_email_domain_confidence {
            return fail(
                "name_max_confidence",
                "must stay below invoice_email_domain_confidence".to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_deserialize_from_nothing() {
        let config: MatchConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, MatchConfig::default());
        config.validate().unwrap();
        assert_eq!(config.metadata_keys, ["cscx_account_id", "customer_id"]);
    }

    #[test]
    fn partial_override_keeps_other_defaults() {
        let config: MatchConfig =
            serde_json::from_str(r#"{"metadata_keys":["crm_id"],"ambiguity_margin":0.1}"#).unwrap();
        assert_eq!(config.metadata_keys, ["crm_id"]);
        assert_eq!(config.ambiguity_margin, 0.1);
        assert_eq!(config.name_threshold, 0.92);
        assert!(serde_json::from_str::<MatchConfig>(r#"{"nme_threshold":1}"#).is_err());
    }

    #[test]
    fn validate_names_the_bad_key() {
        type Case = (fn(&mut MatchConfig), &'static str);
        let cases: [Case; 6] = [
            (|c| c.metadata_keys = vec![" ".into()], "metadata_keys"),
            (|c| c.name_threshold = 1.5, "name_threshold"),
            (
                |c| c.email_domain_confidence = f64::NAN,
                "email_domain_confidence",
            ),
            (|c| c.ambiguity_margin = -0.1, "ambiguity_margin"),
            (
                |c| c.invoice_email_domain_confidence = 0.99,
                "invoice_email_domain_confidence",
            ),
            (|c| c.name_max_confidence = 0.95, "name_max_confidence"),
        ];
        for (mutate, key) in cases {
            let mut config = MatchConfig::default();
            mutate(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().starts_with(&format!("matching.{key}: ")));
        }
    }
}

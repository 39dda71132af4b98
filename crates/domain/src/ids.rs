//! Typed identifiers, parsed once at the edge so the rest of the code never
//! sees an id of the wrong kind.
//!
//! Stripe ids are an object prefix (`cus_`, `sub_`, …) followed by
//! `[A-Za-z0-9_]`. Stripe documents no maximum length; we cap ids at 255 bytes
//! because that is the widest column we store them in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest Stripe id we accept, in bytes (prefix included).
pub const MAX_STRIPE_ID_LEN: usize = 255;

/// Longest [`TenantId`] we accept, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The input was the empty string.
    #[error("{kind} is empty")]
    Empty {
        /// The id type that was being parsed, e.g. `"StripeCustomerId"`.
        kind: &'static str,
    },
    /// The input does not start with any of the prefixes of its kind.
    #[error("{kind} must start with {}", expected.join(" or "))]
    WrongPrefix {
        /// The id type that was being parsed.
        kind: &'static str,
        /// The accepted prefixes.
        expected: &'static [&'static str],
    },
    /// The input is only a prefix (e.g. `"cus_"`).
    #[error("{kind} has nothing after its prefix")]
    NothingAfterPrefix {
        /// The id type that was being parsed.
        kind: &'static str,
    },
    /// The input contains a character outside the allowed set.
    #[error("{kind} contains {character:?} at byte {index}; allowed: {allowed}")]
    BadCharacter {
        /// The id type that was being parsed.
        kind: &'static str,
        /// The first offending character.
        character: char,
        /// Its byte offset in the input.
        index: usize,
        /// The allowed set, for the message.
        allowed: &'static str,
    },
    /// The input is longer than the maximum for its kind.
    #[error("{kind} is {len} bytes long; at most {max} allowed")]
    TooLong {
        /// The id type that was being parsed.
        kind: &'static str,
        /// Length of the input in bytes.
        len: usize,
        /// Maximum length in bytes.
        max: usize,
    },
}

struct IdRules {
    kind: &'static str,
    prefixes: &'static [&'static str],
    max_len: usize,
    allowed: &'static str,
    is_allowed: fn(char) -> bool,
}

fn is_stripe_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_tenant_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check(rules: &IdRules, input: &str) -> Result<(), IdError> {
    let kind = rules.kind;
    if input.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if input.len() > rules.max_len {
        return Err(IdError::TooLong {
            kind,
            len: input.len(),
            max: rules.max_len,
        });
    }
    if let Some((index, character)) = input.char_indices().find(|&(_, c)| !(rules.is_allowed)(c)) {
        return Err(IdError::BadCharacter {
            kind,
            character,
            index,
            allowed: rules.allowed,
        });
    }
    if rules.prefixes.is_empty() {
        return Ok(());
    }
    match rules.prefixes.iter().find(|p| input.starts_with(**p)) {
        None => Err(IdError::WrongPrefix {
            kind,
            expected: rules.prefixes,
        }),
        Some(prefix) if input.len() == prefix.len() => Err(IdError::NothingAfterPrefix { kind }),
        Some(_) => Ok(()),
    }
}

/// Defines a validated string newtype with parsing, Display and serde.
macro_rules! string_id {
    (
        $(#[$meta:meta])*
        $name:ident, prefixes: [$($prefix:literal),*], max_len: $max:expr,
        allowed: $allowed:literal, is_allowed: $is_allowed:path
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Prefixes a valid id of this kind starts with (empty: any).
            pub const PREFIXES: &'static [&'static str] = &[$($prefix),*];

            const RULES: IdRules = IdRules {
                kind: stringify!($name),
                prefixes: Self::PREFIXES,
                max_len: $max,
                allowed: $allowed,
                is_allowed: $is_allowed,
            };

            /// Parses `input`, borrowing it.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                check(&Self::RULES, input)?;
                Ok(Self(input.to_owned()))
            }

            /// The id as Stripe (or CSCX) spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Gives back the owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(input: String) -> Result<Self, IdError> {
                check(&Self::RULES, &input)?;
                Ok(Self(input))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::try_from(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

macro_rules! stripe_id {
    ($(#[$meta:meta])* $name:ident, [$($prefix:literal),+]) => {
        string_id!(
            $(#[$meta])*
            $name, prefixes: [$($prefix),+], max_len: MAX_STRIPE_ID_LEN,
            allowed: "[A-Za-z0-9_]", is_allowed: is_stripe_id_char
        );
    };
}

stripe_id!(
    /// A Stripe event id, `evt_…`.
    StripeEventId,
    ["evt_"]
);
stripe_id!(
    /// A Stripe customer id, `cus_…`.
    StripeCustomerId,
    ["cus_"]
);
stripe_id!(
    /// A Stripe subscription id, `sub_…`.
    StripeSubscriptionId,
    ["sub_"]
);
stripe_id!(
    /// A Stripe invoice id, `in_…`.
    StripeInvoiceId,
    ["in_"]
);
stripe_id!(
    /// A Stripe price id, `price_…`.
    StripePriceId,
    ["price_"]
);
stripe_id!(
    /// A Stripe account id, `acct_…` (the connected account of a Connect event).
    StripeAccountId,
    ["acct_"]
);
stripe_id!(
    /// A Stripe payment method id: `pm_…`, or a legacy card (`card_…`) or
    /// source (`src_…`), which Stripe still returns where a payment method
    /// is expected.
    StripePaymentMethodId,
    ["pm_", "card_", "src_"]
);

string_id!(
    /// The CSCX organisation that owns a row: an opaque, non-empty id of at
    /// most 64 characters from `[A-Za-z0-9_-]`.
    TenantId, prefixes: [], max_len: MAX_TENANT_ID_LEN,
    allowed: "[A-Za-z0-9_-]", is_allowed: is_tenant_id_char
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks every Stripe id kind must pass, generated per kind.
    macro_rules! stripe_id_tests {
        ($module:ident, $ty:ident, $prefix:literal, $other_prefix:literal) => {
            mod $module {
                use super::*;

                #[test]
                fn parses_a_valid_id() {
                    let raw = concat!($prefix, "1NxA2b_Zz9");
                    let id = $ty::try_from(raw).unwrap();
                    assert_eq!(id.as_str(), raw);
                    assert_eq!(id.to_string(), raw);
                    assert_eq!(raw.parse::<$ty>().unwrap(), id);
                    assert_eq!($ty::try_from(raw.to_owned()).unwrap(), id);
                }

                #[test]
                fn rejects_empty() {
                    assert!(matches!($ty::try_from(""), Err(IdError::Empty { .. })));
                }

                #[test]
                fn rejects_wrong_prefix() {
                    let err = $ty::try_from(concat!($other_prefix, "123")).unwrap_err();
                    assert!(matches!(err, IdError::WrongPrefix { .. }), "{err:?}");
                    assert!(err.to_string().contains($prefix), "{err}");
                }

                #[test]
                fn rejects_a_bare_prefix() {
                    assert!(matches!(
                        $ty::try_from($prefix),
                        Err(IdError::NothingAfterPrefix { .. })
                    ));
                }

                #[test]
                fn rejects_bad_characters() {
                    for bad in [" ", "-", ".", "é", "/", "\n"] {
                        let raw = format!("{}abc{bad}def", $prefix);
                        let err = $ty::try_from(raw.as_str()).unwrap_err();
                        assert!(
                            matches!(err, IdError::BadCharacter { index, .. } if index == $prefix.len() + 3),
                            "{raw:?}: {err:?}"
                        );
                    }
                }

                #[test]
                fn enforces_max_length() {
                    let longest = format!("{}{}", $prefix, "a".repeat(MAX_STRIPE_ID_LEN - $prefix.len()));
                    assert!($ty::try_from(longest.as_str()).is_ok());
                    let too_long = format!("{longest}a");
                    assert!(matches!(
                        $ty::try_from(too_long.as_str()),
                        Err(IdError::TooLong { len: 256, max: 255, .. })
                    ));
                }

                #[test]
                fn serde_round_trips_and_validates() {
                    let raw = concat!($prefix, "abc123");
                    let id: $ty = serde_json::from_str(&format!("\"{raw}\"")).unwrap();
                    assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{raw}\""));
                    assert!(serde_json::from_str::<$ty>(concat!("\"", $other_prefix, "abc\"")).is_err());
                    assert!(serde_json::from_str::<$ty>("\"\"").is_err());
                    assert!(serde_json::from_str::<$ty>("42").is_err());
                }
            }
        };
    }

    stripe_id_tests!(event, StripeEventId, "evt_", "cus_");
    stripe_id_tests!(customer, StripeCustomerId, "cus_", "sub_");
    stripe_id_tests!(subscription, StripeSubscriptionId, "sub_", "si_");
    stripe_id_tests!(invoice, StripeInvoiceId, "in_", "ii_");
    stripe_id_tests!(price, StripePriceId, "price_", "plan_");
    stripe_id_tests!(account, StripeAccountId, "acct_", "ca_");
    stripe_id_tests!(payment_method, StripePaymentMethodId, "pm_", "pi_");

    #[test]
    fn payment_method_accepts_legacy_card_and_source_ids() {
        for raw in ["pm_1Abc", "card_1Abc", "src_1Abc"] {
            assert_eq!(StripePaymentMethodId::try_from(raw).unwrap().as_str(), raw);
        }
        let err = StripePaymentMethodId::try_from("ba_1Abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "StripePaymentMethodId must start with pm_ or card_ or src_"
        );
    }

    #[test]
    fn prefixes_are_case_sensitive() {
        assert!(StripeCustomerId::try_from("CUS_123").is_err());
    }

    #[test]
    fn invoice_prefix_does_not_accept_lookalikes() {
        // `inv_`/`int_` are not invoices; `in_` must be followed by the id body.
        assert!(StripeInvoiceId::try_from("inv_123").is_err());
        assert!(StripeInvoiceId::try_from("in_123").is_ok());
    }

    #[test]
    fn tenant_id_accepts_opaque_ids() {
        for raw in ["org-42", "A_b-9", "x", &"t".repeat(MAX_TENANT_ID_LEN)] {
            let tenant = TenantId::try_from(raw).unwrap();
            assert_eq!(tenant.as_str(), raw);
            assert_eq!(tenant.to_string(), raw);
        }
    }

    #[test]
    fn tenant_id_rejects_invalid_input() {
        assert!(matches!(TenantId::try_from(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            TenantId::try_from("org 42"),
            Err(IdError::BadCharacter {
                character: ' ',
                index: 3,
                ..
            })
        ));
        assert!(matches!(
            TenantId::try_from("org/42"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            TenantId::try_from("t".repeat(MAX_TENANT_ID_LEN + 1).as_str()),
            Err(IdError::TooLong { max: 64, .. })
        ));
    }

    #[test]
    fn tenant_id_serde_validates() {
        let tenant: TenantId = serde_json::from_str("\"org-1\"").unwrap();
        assert_eq!(serde_json::to_string(&tenant).unwrap(), "\"org-1\"");
        assert!(serde_json::from_str::<TenantId>("\"org 1\"").is_err());
    }

    #[test]
    fn error_messages_name_the_kind() {
        let err = StripeCustomerId::try_from("cus_a b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "StripeCustomerId contains ' ' at byte 5; allowed: [A-Za-z0-9_]"
        );
    }
}

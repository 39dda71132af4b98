//! Placeholder: being written (Stripe subscription -> domain MRR input).

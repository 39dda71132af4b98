//! stripe-fake

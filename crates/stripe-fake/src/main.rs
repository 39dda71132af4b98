//! `stripe-fake`: a local stand-in for Stripe's API. Full behaviour lands with its own issue.
fn main() {
    println!("stripe-fake: not yet implemented");
}

//! `billingctl match`: the operator's side of matching review. `review` and `show` read the
//! matcher's views; `set`, `confirm`, `reject` and `clear` publish a `ManualDecisionRequested`
//! (with confirms) that the matcher applies and records — the same path as query-api's
//! `POST /api/matching/customers/{id}/decision`.

use std::time::Duration;

use contracts::{v1, Contract as _};
use diesel::sql_types::{Double, Nullable, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use platform::amqp::{Broker, Outgoing, Publisher};
use platform::config::CommonSettings;
use prost::Message as _;

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct MatchArgs {
    #[command(subcommand)]
    action: MatchAction,
}

#[derive(clap::Subcommand)]
enum MatchAction {
    /// List customers waiting for a person (ambiguous and unmatched).
    Review {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One customer's link and the decisions about it.
    Show {
        #[arg(long)]
        tenant: String,
        customer: String,
    },
    /// Link a customer to an account by hand.
    Set(Decision),
    /// Keep the customer's current automatic link, whatever the rules say later.
    Confirm(Decision),
    /// Not this account (`--account`), or without it: the customer belongs to no account.
    Reject(Decision),
    /// Forget the manual decisions: the rules decide again.
    Clear(Decision),
}

#[derive(clap::Args)]
struct Decision {
    #[arg(long)]
    tenant: String,
    customer: String,
    #[arg(long)]
    account: Option<String>,
    #[arg(long, default_value = "")]
    note: String,
    /// Who decides (recorded in the decision log).
    #[arg(long, env = "USER", default_value = "operator")]
    actor: String,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    stripe_customer_id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    account_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    method: Option<String>,
    #[diesel(sql_type = Double)]
    confidence: f64,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    customer_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Text)]
    decided_by: String,
}

const SELECT: &str =
    "SELECT stripe_customer_id, status, account_id, method, confidence, email, customer_name, \
     reason, decided_by FROM matching.customer_links";

fn print_row(r: &Row) {
    println!(
        "{}  {:<9} {:<16} {:<12} {:.2}  {} <{}>  by {}",
        r.stripe_customer_id,
        r.status,
        r.account_id.as_deref().unwrap_or("-"),
        r.method.as_deref().unwrap_or("-"),
        r.confidence,
        r.customer_name.as_deref().unwrap_or(""),
        r.email.as_deref().unwrap_or(""),
        r.decided_by
    );
    if let Some(reason) = &r.reason {
        println!("    {reason}");
    }
}

pub async fn run(common: &CommonSettings, args: MatchArgs) -> anyhow::Result<()> {
    use v1::manual_decision_requested::Action;
    let (decision, action) = match args.action {
        MatchAction::Review { tenant, limit } => {
            let mut conn = AsyncPgConnection::establish(&common.database.url).await?;
            let rows: Vec<Row> = diesel::sql_query(format!(
                "{SELECT} WHERE tenant_id = $1 AND status IN ('ambiguous', 'unmatched') \
                 ORDER BY stripe_customer_id LIMIT $2"
            ))
            .bind::<Text, _>(&tenant)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load(&mut conn)
            .await?;
            println!("{} customer(s) to review", rows.len());
            rows.iter().for_each(print_row);
            return Ok(());
        }
        MatchAction::Show { tenant, customer } => {
            let mut conn = AsyncPgConnection::establish(&common.database.url).await?;
            let rows: Vec<Row> = diesel::sql_query(format!(
                "{SELECT} WHERE tenant_id = $1 AND stripe_customer_id = $2"
            ))
            .bind::<Text, _>(&tenant)
            .bind::<Text, _>(&customer)
            .load(&mut conn)
            .await?;
            let Some(row) = rows.into_iter().next() else {
                anyhow::bail!("no customer {customer} in tenant {tenant}");
            };
            print_row(&row);
            return Ok(());
        }
        MatchAction::Set(d) => (d, Action::Set),
        MatchAction::Confirm(d) => (d, Action::Confirm),
        MatchAction::Reject(d) => (d, Action::Reject),
        MatchAction::Clear(d) => (d, Action::Clear),
    };
    domain::TenantId::parse(&decision.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    domain::StripeCustomerId::parse(&decision.customer)
        .map_err(|e| anyhow::anyhow!("customer: {e}"))?;
    if action == Action::Set && decision.account.is_none() {
        anyhow::bail!("set needs --account");
    }
    let request = v1::ManualDecisionRequested {
        request_id: uuid::Uuid::new_v4().to_string(),
        stripe_customer_id: decision.customer.clone(),
        action: action as i32,
        account_id: decision.account.clone().unwrap_or_default(),
        actor: decision.actor.clone(),
        note: decision.note.clone(),
        requested_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    let broker = Broker::new(common.amqp.clone(), matcher::spec().topology);
    let publisher = Publisher::new(broker.clone());
    let message = Outgoing::protobuf(
        v1::ManualDecisionRequested::EXCHANGE,
        request.routing_key(),
        request.request_id.clone(),
        v1::ManualDecisionRequested::TYPE,
        &decision.tenant,
        request.encode_to_vec(),
    );
    tokio::time::timeout(CONFIRM_TIMEOUT, publisher.publish(&message))
        .await
        .map_err(|_| anyhow::anyhow!("the broker did not confirm within {CONFIRM_TIMEOUT:?}"))??;
    broker.close().await;
    println!(
        "decision {} queued ({} {}); `billingctl match show --tenant {} {}` shows the result",
        request.request_id,
        action.as_str_name().to_lowercase(),
        decision.customer,
        decision.tenant,
        decision.customer
    );
    Ok(())
}

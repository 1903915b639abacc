//! `drover queue`: the apps with instances waiting to launch (`GET
//! /v2/queue`), with their launch delay and why the last offers did not
//! fit (the placement checks that declined them, with counts).

use anyhow::Context as _;

use super::format::{self, NONE, Table};
use super::http::Client;
use super::wire::{Queue, QueueItem};
use super::{ClientArgs, Output, emit};

/// `drover queue`.
#[derive(Debug, clap::Args)]
pub(crate) struct QueueArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// Runs `drover queue`.
pub(crate) async fn run(args: QueueArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.client)?;
    let body = client.get("/v2/queue").await?;
    if args.client.output == Output::Json {
        return emit(&format::pretty_json(&body)?);
    }
    let queue: Queue = serde_json::from_slice(&body).context("unexpected answer from the API")?;
    emit(&render(&queue.queue))
}

/// The launch delay: `-` when none is left, else the seconds left.
fn delay_cell(item: &QueueItem) -> String {
    if item.delay.overdue || item.delay.time_left_seconds == 0 {
        NONE.to_owned()
    } else {
        format!("{}s", item.delay.time_left_seconds)
    }
}

/// The checks that declined offers, most declines first:
/// `InsufficientCpus 12, UnfulfilledRole 2`.
fn rejects_cell(item: &QueueItem) -> String {
    let mut rejects: Vec<(&str, u64)> = item
        .processed_offers_summary
        .reject_summary_last_offers
        .iter()
        .filter(|r| r.declined > 0)
        .map(|r| (r.reason.as_str(), r.declined))
        .collect();
    // Stable: equal counts keep the API's (funnel) order.
    rejects.sort_by_key(|r| std::cmp::Reverse(r.1));
    if rejects.is_empty() {
        NONE.to_owned()
    } else {
        rejects.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// `drover queue`: one row per waiting app.
pub(crate) fn render(items: &[QueueItem]) -> String {
    let mut table = Table::new(&[
        "APP",
        "WAITING",
        "DELAY",
        "SINCE",
        "OFFERS",
        "UNUSED",
        "LAST UNUSED OFFER",
        "DECLINED BY",
    ]);
    for item in items {
        let offers = &item.processed_offers_summary;
        table.row(vec![
            item.app.id.clone(),
            item.count.to_string(),
            delay_cell(item),
            format::utc(item.since.as_deref()),
            offers.processed_offers_count.to_string(),
            offers.unused_offers_count.to_string(),
            format::utc(offers.last_unused_offer_at.as_deref()),
            rejects_cell(item),
        ]);
    }
    table.render()
}

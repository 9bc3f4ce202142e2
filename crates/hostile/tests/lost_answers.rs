//! The server takes a commit but its answer never reaches the committer (a proxy that
//! fails, a connection cut at the wrong moment). The commit is then in doubt: merging it
//! could fork the committer off if the server had refused it, discarding it forks the
//! committer off if the server has it. The client keeps it pending and settles it by
//! posting the same request again at the next sync; everyone ends in the same epoch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_api::SendMessage;
use sotto_client::{ClientError, SendOptions};
use sotto_hostile::{Exchange, Phase};

#[tokio::test]
async fn a_commit_whose_answer_is_lost_is_settled_at_the_next_sync() {
    // The server's answer replaced by a failure: the client retries, then gives up.
    lose_the_answer(|exchange| {
        exchange.status = 502;
        exchange.response = b"bad gateway".to_vec();
    })
    .await;
    // The answer cut short: a success the client cannot read.
    lose_the_answer(|exchange| {
        let half = exchange.response.len() / 2;
        exchange.response.truncate(half);
    })
    .await;
}

/// Alice adds carol; the server stores the commit, and `lose` spoils its answer.
async fn lose_the_answer(lose: fn(&mut Exchange)) {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let mut carol = person(&server, "carol").await;
    let group = alice
        .client
        .create_group(group("ops", &["bob"]))
        .await
        .unwrap();
    bob.client.sync().await.unwrap();

    // The server stores every commit with a Welcome, and its answer is lost.
    alice.proxy.rule(move |exchange, phase| {
        if phase == Phase::Response
            && exchange.method == "POST"
            && exchange.path.ends_with("/messages")
        {
            let body: SendMessage = serde_json::from_slice(&exchange.request).unwrap();
            if body.welcome.is_some() {
                lose(exchange);
            }
        }
    });
    let lost = alice
        .client
        .add_member(&group.id, "carol")
        .await
        .unwrap_err();
    assert!(
        matches!(
            lost,
            ClientError::Server { status: 502, .. } | ClientError::Protocol(_)
        ),
        "{lost}"
    );
    // Everyone else follows the commit the server took.
    assert!(bob.client.sync().await.unwrap().messages.is_empty());
    let joined = carol.client.sync().await.unwrap().joined;
    assert_eq!(joined, std::slice::from_ref(&group.id));

    // Once answers arrive again, alice's next sync settles the commit: the server says it
    // has it, and alice merges it.
    alice.proxy.behave();
    alice.client.sync().await.unwrap();
    assert_eq!(
        alice.client.conversation_info(&group.id).unwrap().members,
        ["alice", "bob", "carol"]
    );
    alice
        .client
        .send_text(&group.id, "all three of us", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut bob).await, ["all three of us"]);
    assert_eq!(received(&mut carol).await, ["all three of us"]);
    carol
        .client
        .send_text(&group.id, "hello both", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut alice).await, ["hello both"]);
}

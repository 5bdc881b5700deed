//! Smoke-test client: one bus connection, `Begin` then one `Answer` per remaining argument,
//! printing every step. `hx-login ADDRESS USER SERVICE RHOST TTY [ANSWER...]`
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use herarx_proto::AuthProxy;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, user, service, rhost, tty, answers @ ..] = args.as_slice() else {
        return Err("usage: hx-login ADDRESS USER SERVICE RHOST TTY [ANSWER...]".into());
    };
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await?;
    let auth = AuthProxy::new(&conn).await?;
    let (txn, mut step) = auth.begin(user, service, rhost, tty, "").await?;
    println!(
        "begin -> {:?} {:?} {:?}",
        step.action, step.prompt, step.message
    );
    for a in answers {
        if step.action.is_terminal() {
            break;
        }
        match auth.answer(&txn, a).await {
            Ok(s) => step = s,
            Err(e) => {
                println!("answer -> error {e}");
                return Ok(());
            }
        }
        println!(
            "answer -> {:?} {:?} {:?}",
            step.action, step.prompt, step.message
        );
    }
    Ok(())
}

//! The D-Bus face in process: the real `AuthInterface`, `FactorsInterface` and
//! `AdminInterface` served on a private dbus-daemon with the shipped policy (as
//! `daemon::serve` serves them), over the login tests' harness (temp store, fixed users,
//! memory log), and called through herarx-proto's proxies from other connections. What is
//! asserted is what a client sees at the bus: steps, error names, whose account.

mod private_bus;

use std::sync::Arc;

use herarx_proto::{
    ADMIN_INTERFACE, AUTH_INTERFACE, Action, AdminProxy, AuthProxy, BUS_NAME, FACTORS_INTERFACE,
    FactorsProxy, HerarxError, OBJECT_PATH, Step, limits,
};
use zbus::{Connection, DBusError};

use super::admin::AdminInterface;
use super::{AuthInterface, BusDriver, FactorsInterface};
use crate::config::Config;
use crate::login::tests::{Harness, harness_with_users};
use crate::login::{Logins, NO_FACTOR_DENIED, PROMPT, PROMPT_AFTER_REPLAY, PROMPT_AFTER_WRONG};
use crate::selfservice::SelfService;
use crate::state::unix_now;
use crate::users::FixedUsers;
use private_bus::PrivateBus;

/// alice's uid: `nobody`'s, an account the bus itself can resolve for a connection of it.
const ALICE: u32 = 65534;

const NO_SUCH_TRANSACTION: &str = "org.herarx.Herarx1.Error.NoSuchTransaction";

/// The daemon's objects on a private bus. Dropped in field order: the serving connection,
/// then the store, then the bus (killed by pid).
struct Served {
    _server: Connection,
    h: Harness,
    bus: PrivateBus,
}

async fn serve() -> Served {
    let h = harness_with_users(
        Config::default(),
        FixedUsers::new(&[("root", 0), ("alice", ALICE), ("bob", 1001)]),
    );
    let bus = PrivateBus::start();
    let driver = BusDriver::default();
    let server = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at(
            OBJECT_PATH,
            AuthInterface::new(Arc::new(Logins::new(h.state.clone())), driver.clone()),
        )
        .serve_at(
            OBJECT_PATH,
            AdminInterface::new(
                Arc::new(crate::admin::Admin::new(h.state.clone())),
                driver.clone(),
            ),
        )
        .serve_at(
            OBJECT_PATH,
            FactorsInterface::new(Arc::new(SelfService::new(h.state.clone())), driver),
        )
        .name(BUS_NAME)
        .allow_name_replacements(false)
        .replace_existing_names(false)
        .build()
        .await
        .unwrap();
    Served {
        _server: server,
        h,
        bus,
    }
}

async fn auth(conn: &Connection) -> AuthProxy<'static> {
    AuthProxy::new(conn).await.unwrap()
}

/// A console login (`login`, no rhost) of `user`.
async fn begin(conn: &Connection, user: &str) -> Result<(String, Step), HerarxError> {
    auth(conn).await.begin(user, "login", "", "", "").await
}

/// The code of the test seed now (what the user's app shows).
fn code_now() -> String {
    crate::login::tests::code(unix_now())
}

/// A code that is not the current one.
fn wrong_now() -> String {
    crate::login::tests::wrong(unix_now())
}

/// The D-Bus error name of a raw call (None when it succeeded): the name on the wire, not a
/// decoding of it.
async fn error_name<B>(conn: &Connection, interface: &str, method: &str, body: &B) -> Option<String>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    match conn
        .call_method(Some(BUS_NAME), OBJECT_PATH, Some(interface), method, body)
        .await
    {
        Ok(_) => None,
        Err(zbus::Error::MethodError(name, _, _)) => Some(name.as_str().to_owned()),
        // zbus decodes the standard org.freedesktop.DBus.Error.* names.
        Err(zbus::Error::FDO(e)) => Some(e.name().as_str().to_owned()),
        Err(e) => panic!("{interface}.{method}: not a method error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_code_passes_once_then_is_a_replay() {
    let s = serve().await;
    s.h.enrol("alice");
    let sshd = s.bus.connect().await;

    let (id, step) = begin(&sshd, "alice").await.unwrap();
    assert_eq!(step, Step::prompt(PROMPT));
    let code = code_now();
    let step = auth(&sshd).await.answer(&id, &code).await.unwrap();
    assert_eq!(step.action, Action::Success, "{step:?}");

    // The same code in a new login: refused as used, and the login goes on asking.
    let (id, _) = begin(&sshd, "alice").await.unwrap();
    let step = auth(&sshd).await.answer(&id, &code).await.unwrap();
    assert_eq!(step, Step::prompt(PROMPT_AFTER_REPLAY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_asked_again_and_a_right_one_then_passes() {
    let s = serve().await;
    s.h.enrol("alice");
    let sshd = s.bus.connect().await;
    let (id, _) = begin(&sshd, "alice").await.unwrap();
    let step = auth(&sshd).await.answer(&id, &wrong_now()).await.unwrap();
    assert_eq!(step, Step::prompt(PROMPT_AFTER_WRONG));
    let step = auth(&sshd).await.answer(&id, &code_now()).await.unwrap();
    assert_eq!(step.action, Action::Success, "{step:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_answers_only_the_connection_that_began_it() {
    let s = serve().await;
    s.h.enrol("alice");
    let owner = s.bus.connect().await;
    // Another client of the same uid (root): the binding is to the connection, not the uid.
    let other = s.bus.connect().await;
    let (id, _) = begin(&owner, "alice").await.unwrap();

    let code = code_now();
    assert_eq!(
        error_name(&other, AUTH_INTERFACE, "Answer", &(&id, &code)).await,
        Some(NO_SUCH_TRANSACTION.into())
    );
    let e = auth(&other).await.cancel(&id).await.unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchTransaction(_)), "{e:?}");
    assert_eq!(e.name().as_str(), NO_SUCH_TRANSACTION);
    assert_eq!(
        error_name(&other, AUTH_INTERFACE, "Cancel", &(&id,)).await,
        Some(NO_SUCH_TRANSACTION.into())
    );

    // Neither call touched it: the owner's answer still passes (the code was not consumed).
    let step = auth(&owner).await.answer(&id, &code).await.unwrap();
    assert_eq!(step.action, Action::Success, "{step:?}");

    // The owner's cancel works, and ends the transaction.
    let (id, _) = begin(&owner, "alice").await.unwrap();
    auth(&owner).await.cancel(&id).await.unwrap();
    let e = auth(&owner)
        .await
        .answer(&id, &code_now())
        .await
        .unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchTransaction(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_the_callers_own_account_as_the_bus_says() {
    let s = serve().await;
    s.h.enrol("alice");
    let root = s.bus.connect().await;
    let alice = s.bus.connect_as(ALICE).await;

    let mine = FactorsProxy::new(&root)
        .await
        .unwrap()
        .status()
        .await
        .unwrap();
    assert_eq!(mine.user, "root");
    assert!(mine.factors.is_empty(), "{mine:?}");

    let hers = FactorsProxy::new(&alice)
        .await
        .unwrap()
        .status()
        .await
        .unwrap();
    assert_eq!(hers.user, "alice");
    assert_eq!(hers.factors.len(), 1, "{hers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_caller_may_begin_only_its_own_login() {
    let s = serve().await;
    s.h.enrol("alice");
    let alice = s.bus.connect_as(ALICE).await;
    // A screen locker of alice's: her own login is asked for her code.
    let (id, step) = begin(&alice, "alice").await.unwrap();
    assert_eq!(step, Step::prompt(PROMPT));
    let step = auth(&alice).await.answer(&id, &code_now()).await.unwrap();
    assert_eq!(step.action, Action::Success, "{step:?}");
    // Nobody else's: bob's login is refused to her as a call.
    let e = begin(&alice, "bob").await.unwrap_err();
    assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");
    assert_eq!(
        e.name().as_str(),
        "org.herarx.Herarx1.Error.PermissionDenied"
    );
    // From root, bob's login is a login like any other (he has no factor: the default
    // policy denies it, as a step).
    let root = s.bus.connect().await;
    let (_, step) = begin(&root, "bob").await.unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, NO_FACTOR_DENIED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_are_for_root_not_for_a_user() {
    let s = serve().await;
    s.h.enrol("alice");
    let alice = s.bus.connect_as(ALICE).await;
    let as_alice = AdminProxy::new(&alice).await.unwrap();
    let e = as_alice.user_status("alice").await.unwrap_err();
    assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");
    let e = as_alice.reset("alice").await.unwrap_err();
    assert!(matches!(e, HerarxError::PermissionDenied(_)), "{e:?}");

    let root = s.bus.connect().await;
    let as_root = AdminProxy::new(&root).await.unwrap();
    let status = as_root.user_status("alice").await.unwrap();
    assert!(status.exists, "{status:?}");
    // alice's refused reset removed nothing.
    assert_eq!(status.factors.len(), 1, "{status:?}");
    let listed = as_root.list("", 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|u| u.user.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(as_root.reset("alice").await.unwrap(), 1);
    assert!(
        as_root
            .user_status("alice")
            .await
            .unwrap()
            .factors
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_arguments_are_invalid_and_the_daemon_keeps_serving() {
    let s = serve().await;
    let root = s.bus.connect().await;
    let too_long = "u".repeat(limits::USER_MAX + 1);
    let e = begin(&root, &too_long).await.unwrap_err();
    assert!(matches!(e, HerarxError::InvalidArgument(_)), "{e:?}");
    assert_eq!(
        error_name(
            &root,
            AUTH_INTERFACE,
            "Begin",
            &(&too_long, "login", "", "", "")
        )
        .await,
        Some("org.herarx.Herarx1.Error.InvalidArgument".into())
    );
    // Far over every limit (1 MiB in one argument): refused the same way.
    let huge = "s".repeat(1 << 20);
    let e = auth(&root)
        .await
        .begin("alice", &huge, "", "", "")
        .await
        .unwrap_err();
    assert!(matches!(e, HerarxError::InvalidArgument(_)), "{e:?}");
    let e = AdminProxy::new(&root)
        .await
        .unwrap()
        .user_status(&too_long)
        .await
        .unwrap_err();
    assert!(matches!(e, HerarxError::InvalidArgument(_)), "{e:?}");

    // At the limit it is a name like any other: an unknown one, answered as a known user
    // without a factor is (no enumeration).
    let (_, step) = begin(&root, &"u".repeat(limits::USER_MAX)).await.unwrap();
    assert_eq!(step, Step::terminal(Action::Denied, NO_FACTOR_DENIED));
    // And the daemon still serves a real login.
    s.h.enrol("alice");
    let (id, _) = begin(&root, "alice").await.unwrap();
    let step = auth(&root).await.answer(&id, &code_now()).await.unwrap();
    assert_eq!(step.action, Action::Success, "{step:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_and_wrong_signatures_get_the_standard_errors() {
    let s = serve().await;
    let root = s.bus.connect().await;
    assert_eq!(
        error_name(&root, AUTH_INTERFACE, "Nope", &()).await,
        Some("org.freedesktop.DBus.Error.UnknownMethod".into())
    );
    // An interface the shipped policy does not list never reaches the daemon; one it lists
    // does.
    assert_eq!(
        error_name(&root, "org.herarx.Herarx1.Nope", "Begin", &()).await,
        Some("org.freedesktop.DBus.Error.AccessDenied".into())
    );
    assert_eq!(
        error_name(
            &root,
            "org.freedesktop.DBus.Properties",
            "GetAll",
            &(AUTH_INTERFACE,)
        )
        .await,
        Some("org.freedesktop.DBus.Error.AccessDenied".into())
    );
    assert_eq!(
        error_name(
            &root,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            &()
        )
        .await,
        None
    );
    // Begin wants five strings.
    assert_eq!(
        error_name(&root, AUTH_INTERFACE, "Begin", &(1u32,)).await,
        Some("org.freedesktop.DBus.Error.InvalidArgs".into())
    );
    assert_eq!(
        error_name(&root, FACTORS_INTERFACE, "Status", &("extra",)).await,
        Some("org.freedesktop.DBus.Error.InvalidArgs".into())
    );
    assert_eq!(
        error_name(&root, ADMIN_INTERFACE, "List", &("", "not a u32")).await,
        Some("org.freedesktop.DBus.Error.InvalidArgs".into())
    );
    // The same connection's right calls are still served.
    assert_eq!(
        error_name(
            &root,
            AUTH_INTERFACE,
            "Begin",
            &("alice", "login", "", "", "")
        )
        .await,
        None
    );
    let me = FactorsProxy::new(&root)
        .await
        .unwrap()
        .status()
        .await
        .unwrap();
    assert_eq!(me.user, "root");
}

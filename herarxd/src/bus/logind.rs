//! systemd-logind's view of a caller's session, for `crate::bus::local_session`. Asked on the
//! system bus itself (not on the daemon's own bus, which tests and `--bus` replace), and only
//! when `org.freedesktop.login1` has an owner there: `None` means "no logind here".

use crate::bus::local_session::{Facts, LogindSession};

const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
const LOGIN1: &str = "org.freedesktop.login1";

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<zbus::OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
trait Session {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn user(&self) -> zbus::Result<(u32, zbus::OwnedObjectPath)>;
    #[zbus(property)]
    fn remote(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn active(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn seat(&self) -> zbus::Result<(String, zbus::OwnedObjectPath)>;
}

/// logind's facts about `pid`, or `None` when there is no system bus or no logind on it.
pub async fn facts_of(pid: u32) -> Option<Facts> {
    if !std::path::Path::new(SYSTEM_BUS_SOCKET).exists() {
        return None;
    }
    let conn =
        zbus::connection::Builder::address(format!("unix:path={SYSTEM_BUS_SOCKET}").as_str())
            .build()
            .await
            .ok()?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.ok()?;
    let name = zbus::names::BusName::try_from(LOGIN1).ok()?;
    if !dbus.name_has_owner(name).await.unwrap_or(false) {
        return None;
    }
    Some(match ask(&conn, pid).await {
        Ok(found) => Facts::Logind(found),
        Err(e) => Facts::LogindFailed(e.to_string()),
    })
}

async fn ask(conn: &zbus::Connection, pid: u32) -> zbus::Result<Option<LogindSession>> {
    let manager = ManagerProxy::new(conn).await?;
    let path = match manager.get_session_by_pid(pid).await {
        Ok(p) => p,
        // NoSessionForPID: the process is in no session (a service, a cron job, ...).
        Err(zbus::Error::MethodError(name, _, _)) if name.as_str().contains("NoSession") => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let session = SessionProxy::builder(conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    Ok(Some(LogindSession {
        id: session.id().await?,
        uid: session.user().await?.0,
        remote: session.remote().await?,
        active: session.active().await?,
        seat: session.seat().await?.0,
    }))
}

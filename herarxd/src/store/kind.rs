//! The kinds of factor a user can have: one type for the store's `kind` column, the wire's
//! `FactorInfo.kind`, audit rows and `services.NAME.methods`.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A kind of factor. Its name (`as_str`) is what the store, the wire and the audit trail say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorKind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// A FIDO2 security key.
    Fido2,
    /// Codes sent to an email address.
    Email,
    /// Codes sent by text message.
    Sms,
}

/// The method name of a backup code (`services.NAME.methods`, audit rows). Backup codes are
/// not a factor: a user has one set of them, not rows in the factor table.
pub const BACKUP_CODE: &str = "backup-code";

impl FactorKind {
    pub const ALL: [FactorKind; 4] = [
        FactorKind::Totp,
        FactorKind::Fido2,
        FactorKind::Email,
        FactorKind::Sms,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Fido2 => "fido2",
            FactorKind::Email => "email",
            FactorKind::Sms => "sms",
        }
    }

    /// The kind named `name`, exactly as [`FactorKind::as_str`] spells it.
    pub fn parse(name: &str) -> Option<FactorKind> {
        FactorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// An email address or a phone number: a factor whose codes Herarx sends.
    pub const fn is_contact(self) -> bool {
        matches!(self, FactorKind::Email | FactorKind::Sms)
    }
}

impl AsRef<str> for FactorKind {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for FactorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for FactorKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// A row of a kind this daemon does not know (written by a newer version) is an error, not a
/// factor of some other kind: the login fails closed and the log names it.
impl FromSql for FactorKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = value.as_str()?;
        FactorKind::parse(name).ok_or_else(|| {
            FromSqlError::Other(format!("unknown factor kind {name:?} in the store").into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name_and_nothing_else_does() {
        for k in FactorKind::ALL {
            assert_eq!(FactorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FactorKind::parse("TOTP"), None);
        assert_eq!(FactorKind::parse(BACKUP_CODE), None);
        assert_eq!(FactorKind::parse(""), None);
    }

    #[test]
    fn only_email_and_sms_are_contacts() {
        let contacts: Vec<_> = FactorKind::ALL
            .into_iter()
            .filter(|k| k.is_contact())
            .collect();
        assert_eq!(contacts, [FactorKind::Email, FactorKind::Sms]);
    }

    #[test]
    fn an_unknown_kind_in_a_row_is_an_error() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let ok: FactorKind = c.query_row("SELECT 'sms'", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, FactorKind::Sms);
        let e = c
            .query_row("SELECT 'webauthn'", [], |r| r.get::<_, FactorKind>(0))
            .unwrap_err();
        assert!(e.to_string().contains("webauthn"), "{e}");
    }
}

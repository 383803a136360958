//! The example's database as the stand-in simulates it (pure): a revision's process logs in with
//! its `DB_PASSWORD`, then queries the API's tables with it. Two marked passwords play the two
//! ways a rotation to a bad credential goes, without a database — by the demo, the benchmarks,
//! or by hand with `gcloud secrets versions add`:
//!
//! - one that starts with [`REFUSED_PREFIX`] (`"password":"wrong-…"`): the login is refused, so
//!   the revision's `/health` fails and its pods never become Ready;
//! - one that starts with [`NO_GRANTS_PREFIX`] (`"password":"nogrants-…"`): the login succeeds
//!   (`/health` answers 200, the pods are Ready and take traffic) but the credential's role lacks
//!   the grants on the API's tables, so every query is refused — the worse failure, which only
//!   the requests show.
//!
//! Every other non-empty password logs in and queries.

use super::process::Process;

/// A password that starts with this is refused at login.
pub const REFUSED_PREFIX: &str = "wrong";
/// A password that starts with this logs in, but its queries are refused.
pub const NO_GRANTS_PREFIX: &str = "nogrants";

/// Whether the database takes the process's credential; a refusal names the variable, never a
/// value.
pub fn login(process: &Process) -> Result<(), &'static str> {
    match process.env("DB_PASSWORD") {
        None => Err("DB_PASSWORD is not set"),
        Some("") => Err("DB_PASSWORD is empty"),
        Some(password) if password.starts_with(REFUSED_PREFIX) => Err("the database refused DB_PASSWORD"),
        Some(_) => Ok(()),
    }
}

/// Whether the process may query the API's tables: logged in, with the grants. A refusal names
/// the variable, never a value.
pub fn query(process: &Process) -> Result<(), &'static str> {
    login(process)?;
    match process.env("DB_PASSWORD") {
        Some(password) if password.starts_with(NO_GRANTS_PREFIX) => {
            Err("the database refused the query: DB_PASSWORD's role has no grants on the API's tables")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_password(password: Option<&str>) -> Process {
        let env = password.map(|p| ("DB_PASSWORD".to_owned(), p.to_owned()));
        Process { revision: "r".into(), env: env.into_iter().collect(), ..Process::default() }
    }

    #[test]
    fn every_password_but_a_refused_one_logs_in() {
        assert_eq!(login(&with_password(Some("change-me"))), Ok(()));
        assert_eq!(login(&with_password(Some("demo-0a1b"))), Ok(()));
        assert_eq!(login(&with_password(Some("nogrants-0a1b"))), Ok(()), "its login works");
        assert_eq!(login(&with_password(Some("wrong-demo-0a1b"))), Err("the database refused DB_PASSWORD"));
        assert_eq!(login(&with_password(Some(""))), Err("DB_PASSWORD is empty"));
        assert_eq!(login(&with_password(None)), Err("DB_PASSWORD is not set"));
    }

    #[test]
    fn a_password_without_grants_logs_in_but_cannot_query() {
        assert_eq!(query(&with_password(Some("change-me"))), Ok(()));
        let refused = query(&with_password(Some("nogrants-0a1b")));
        assert_eq!(
            refused,
            Err("the database refused the query: DB_PASSWORD's role has no grants on the API's tables")
        );
        assert_eq!(query(&with_password(Some("wrong-0a1b"))), Err("the database refused DB_PASSWORD"), "no login");
        assert_eq!(query(&with_password(None)), Err("DB_PASSWORD is not set"));
    }
}

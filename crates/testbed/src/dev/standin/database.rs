//! The example's database as the stand-in simulates it (pure): a revision's process logs in with
//! its `DB_PASSWORD`. The database accepts every password but one marked as refused — one that
//! starts with [`REFUSED_PREFIX`] — so a rotation to a credential the database does not take
//! can be played without a database: by the demo, or by hand with
//! `gcloud secrets versions add` and `"password":"wrong-…"`.

use super::process::Process;

/// A password that starts with this is refused.
pub const REFUSED_PREFIX: &str = "wrong";

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
        assert_eq!(login(&with_password(Some("wrong-demo-0a1b"))), Err("the database refused DB_PASSWORD"));
        assert_eq!(login(&with_password(Some(""))), Err("DB_PASSWORD is empty"));
        assert_eq!(login(&with_password(None)), Err("DB_PASSWORD is not set"));
    }
}

//! `status.unusableVersions` (pure): the versions Secret Manager refuses, as its own answers to
//! accesses said — never assumed from a notification. Newest first, one entry per version, at
//! most [`MAX_UNUSABLE_VERSIONS`].

use crate::api::secret_ref::MAX_UNUSABLE_VERSIONS;
use crate::api::{UnusableState, UnusableVersion};
use crate::provider::{ProviderError, ProviderErrorKind};
use std::collections::BTreeMap;

/// What one access of a version answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub version: u64,
    /// `None`: the version was served (so it is usable, again or still).
    pub refused: Option<UnusableState>,
}

impl Answer {
    pub fn served(version: u64) -> Self {
        Self { version, refused: None }
    }

    pub fn refused(version: u64, state: UnusableState) -> Self {
        Self { version, refused: Some(state) }
    }

    /// The answer a read of `version` (a number, or `latest`/an alias: no answer) gave.
    pub fn of_read(version: &str, read: Result<&str, &ProviderError>) -> Option<Self> {
        match read {
            // The number the store served, also for `latest` or an alias.
            Ok(served) => served.parse().ok().map(Self::served),
            // A refused `latest` or alias does not say which number it stood for.
            Err(error) => Some(Self::refused(version.parse().ok()?, refusal(error)?)),
        }
    }
}

/// The state a failed access says its version is in, if it says one.
pub fn refusal(error: &ProviderError) -> Option<UnusableState> {
    match error.kind {
        ProviderErrorKind::VersionDisabled => Some(UnusableState::Disabled),
        ProviderErrorKind::VersionDestroyed => Some(UnusableState::Destroyed),
        _ => None,
    }
}

/// `list` after `answers`, in order: a refused version is added (or its state updated), a served
/// one removed. Newest first, deduplicated, the newest [`MAX_UNUSABLE_VERSIONS`] kept; an entry
/// that is not a number (never written by the operator) goes.
pub fn update(list: &[UnusableVersion], answers: &[Answer]) -> Vec<UnusableVersion> {
    let mut states: BTreeMap<u64, UnusableState> =
        list.iter().filter_map(|entry| Some((entry.version.parse().ok()?, entry.state))).collect();
    for answer in answers {
        match answer.refused {
            Some(state) => states.insert(answer.version, state),
            None => states.remove(&answer.version),
        };
    }
    let newest_first = states.into_iter().rev().take(MAX_UNUSABLE_VERSIONS);
    newest_first.map(|(version, state)| UnusableVersion { version: version.to_string(), state }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use UnusableState::{Destroyed, Disabled};

    fn list(entries: &[(&str, UnusableState)]) -> Vec<UnusableVersion> {
        entries.iter().map(|(version, state)| UnusableVersion { version: (*version).into(), state: *state }).collect()
    }

    #[test]
    fn refused_versions_are_added_newest_first_and_served_ones_removed() {
        let start = list(&[("3", Disabled)]);
        let next = update(&start, &[Answer::refused(12, Destroyed), Answer::refused(1, Disabled)]);
        assert_eq!(next, list(&[("12", Destroyed), ("3", Disabled), ("1", Disabled)]), "by number, not as text");
        assert_eq!(update(&next, &[Answer::served(3)]), list(&[("12", Destroyed), ("1", Disabled)]));
        assert_eq!(update(&next, &[Answer::served(7)]), next, "a served version that was never listed");
    }

    #[test]
    fn a_version_is_listed_once_with_its_latest_state() {
        let start = list(&[("2", Disabled)]);
        assert_eq!(update(&start, &[Answer::refused(2, Destroyed)]), list(&[("2", Destroyed)]));
        let answers = [Answer::refused(2, Disabled), Answer::served(2), Answer::refused(2, Disabled)];
        assert_eq!(update(&[], &answers), list(&[("2", Disabled)]), "the last answer wins");
    }

    #[test]
    fn the_newest_ten_are_kept_and_entries_that_are_not_numbers_go() {
        let answers: Vec<Answer> = (1..=12).map(|n| Answer::refused(n, Disabled)).collect();
        let next = update(&list(&[("latest", Disabled)]), &answers);
        let versions: Vec<&str> = next.iter().map(|u| u.version.as_str()).collect();
        assert_eq!(versions, ["12", "11", "10", "9", "8", "7", "6", "5", "4", "3"]);
    }

    #[test]
    fn nothing_changes_without_answers() {
        let start = list(&[("9", Destroyed), ("4", Disabled)]);
        assert_eq!(update(&start, &[]), start);
    }

    fn failure(kind: ProviderErrorKind) -> ProviderError {
        ProviderError { kind, summary: "secretmanager.versions.access: HTTP 400".into() }
    }

    #[test]
    fn a_read_answers_for_the_number_it_served_or_the_pinned_number_it_was_refused() {
        assert_eq!(Answer::of_read("latest", Ok("5")), Some(Answer::served(5)));
        let disabled = failure(ProviderErrorKind::VersionDisabled);
        assert_eq!(Answer::of_read("5", Err(&disabled)), Some(Answer::refused(5, Disabled)));
        let destroyed = failure(ProviderErrorKind::VersionDestroyed);
        assert_eq!(Answer::of_read("5", Err(&destroyed)), Some(Answer::refused(5, Destroyed)));
        assert_eq!(Answer::of_read("latest", Err(&disabled)), None, "which number latest was is unknown");
        assert_eq!(Answer::of_read("5", Err(&failure(ProviderErrorKind::Unavailable))), None, "says nothing");
        assert_eq!(Answer::of_read("5", Err(&failure(ProviderErrorKind::PermissionDenied))), None);
    }
}

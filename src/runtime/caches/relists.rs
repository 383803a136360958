//! Several namespaces watched as one (`--namespace a,b`): a watch per namespace, merged, with each
//! watch's relists kept to its own namespace.
//!
//! To a kube-runtime watcher a relist (`Init`, `InitApply`…, `InitDone`) is everything there is:
//! the reflector store, [`super::Encoded`] and the index replace all they hold with it. Merged
//! from several namespaces' watches, a relist of namespace A would drop namespace B's objects. So
//! each relist is turned here into what a store follows without losing other namespaces: the
//! objects it returns, as they come, then the objects of that namespace that the store held when
//! it started and it did not return (deleted while the watch was down). The store and the index
//! only ever see applies and deletions.
//!
//! Pure: the caller says what the store holds (`held`) and applies the [`Step`]s.

use super::index_key;
use kube::Resource;
use kube::runtime::watcher::Event;
use std::collections::HashSet;

/// Where each watch of a merged stream stands in its relists.
pub struct Relists {
    /// By the namespace of the watch; `None`: a single watch, whose relists cover every key.
    watches: Vec<(Option<String>, Relist)>,
}

#[derive(Default)]
struct Relist {
    /// During a relist: the keys of the watch's namespace that the store held when it started and
    /// that it has not returned yet.
    unconfirmed: Option<HashSet<String>>,
    /// Whether the watch has listed once.
    listed: bool,
}

/// What one event of one watch does to the merged store.
#[derive(Debug, PartialEq)]
pub enum Step<K> {
    /// A change the watch saw: into the store, and handed over at once.
    Applied(K),
    Deleted(K),
    /// An object a relist in progress returned: into the store; handed over once the relist is
    /// done, with the rest of its namespace.
    Relisted(K),
    /// A relist is done. `gone` (`namespace/name`): held in the watch's namespace when it started,
    /// not returned, so deleted while the watch was down.
    RelistDone {
        gone: Vec<String>,
    },
    /// A relist starts: nothing changes until it returns objects.
    RelistStarted,
}

impl Relists {
    /// The watches of `namespaces` (`[None]` for a single watch), none of which has listed yet.
    pub fn new(namespaces: impl IntoIterator<Item = Option<String>>) -> Self {
        Self { watches: namespaces.into_iter().map(|namespace| (namespace, Relist::default())).collect() }
    }

    /// What `event` of the watch of `namespace` does; `held`: the keys (`namespace/name`) the store
    /// holds, of any namespace, asked for when a relist starts.
    pub fn step<K: Resource>(
        &mut self,
        namespace: Option<&str>,
        event: Event<K>,
        held: impl FnOnce() -> Vec<String>,
    ) -> Step<K> {
        let relist = self.relist(namespace);
        match event {
            Event::Apply(object) => Step::Applied(object),
            Event::Delete(object) => Step::Deleted(object),
            Event::Init => {
                let keys = held().into_iter().filter(|key| in_namespace(key, namespace)).collect();
                relist.unconfirmed = Some(keys);
                Step::RelistStarted
            }
            Event::InitApply(object) => {
                if let Some(unconfirmed) = relist.unconfirmed.as_mut() {
                    unconfirmed.remove(&key_of(&object));
                }
                Step::Relisted(object)
            }
            Event::InitDone => {
                relist.listed = true;
                // Without a start (kube-runtime always sends one) nothing is known to be gone.
                let mut gone: Vec<String> = relist.unconfirmed.take().unwrap_or_default().into_iter().collect();
                gone.sort();
                Step::RelistDone { gone }
            }
        }
    }

    /// Whether every watch has listed once.
    pub fn all_listed(&self) -> bool {
        self.watches.iter().all(|(_, relist)| relist.listed)
    }

    fn relist(&mut self, namespace: Option<&str>) -> &mut Relist {
        let position = self.watches.iter().position(|(watched, _)| watched.as_deref() == namespace);
        let index = position.unwrap_or_else(|| {
            // Only the watches given to `new` send events; a stray one gets bookkeeping of its own.
            self.watches.push((namespace.map(str::to_owned), Relist::default()));
            self.watches.len() - 1
        });
        &mut self.watches[index].1
    }
}

/// Whether key `namespace/name` belongs to the watch of `namespace` (`None`: every key does).
pub fn in_namespace(key: &str, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|namespace| key.split_once('/').is_some_and(|(of, _)| of == namespace))
}

fn key_of<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    index_key(meta.namespace.as_deref(), meta.name.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::{Relists, Step, in_namespace};
    use crate::runtime::caches::{Objects, Storage};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    fn object(namespace: &str, name: &str) -> ConfigMap {
        let metadata =
            ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..ObjectMeta::default() };
        ConfigMap { metadata, ..ConfigMap::default() }
    }

    /// A store that follows the steps as the cache does: only applies and deletions reach it.
    struct Merged {
        relists: Relists,
        storage: Objects<ConfigMap>,
        writer: <Objects<ConfigMap> as Storage<ConfigMap>>::Writer,
    }

    impl Merged {
        fn of(namespaces: &[&str]) -> Self {
            let (storage, writer) = <Objects<ConfigMap> as Storage<ConfigMap>>::new();
            let relists = Relists::new(namespaces.iter().map(|ns| Some((*ns).to_owned())));
            Self { relists, storage, writer }
        }

        fn event(&mut self, namespace: &str, event: Event<ConfigMap>) -> Step<ConfigMap> {
            let step = self.relists.step(Some(namespace), event, || self.storage.keys());
            let follow = |writer: &mut _, event| <Objects<ConfigMap> as Storage<ConfigMap>>::follow(writer, &event);
            match &step {
                Step::Applied(object) | Step::Relisted(object) => {
                    follow(&mut self.writer, Event::Apply(object.clone()))
                }
                Step::Deleted(object) => follow(&mut self.writer, Event::Delete(object.clone())),
                Step::RelistDone { gone } => {
                    for key in gone {
                        let (namespace, name) = key.split_once('/').unwrap_or_default();
                        follow(&mut self.writer, Event::Delete(object(namespace, name)));
                    }
                }
                Step::RelistStarted => {}
            }
            step
        }

        fn relist(&mut self, namespace: &str, names: &[&str]) -> Step<ConfigMap> {
            self.event(namespace, Event::Init);
            for name in names {
                self.event(namespace, Event::InitApply(object(namespace, name)));
            }
            self.event(namespace, Event::InitDone)
        }

        fn keys(&self) -> Vec<String> {
            let mut keys = self.storage.keys();
            keys.sort();
            keys
        }
    }

    #[test]
    fn a_relist_of_one_namespace_keeps_the_other_namespaces_objects() {
        let mut merged = Merged::of(&["a", "b"]);
        merged.relist("a", &["one"]);
        merged.relist("b", &["two", "three"]);
        assert_eq!(merged.keys(), ["a/one", "b/three", "b/two"]);

        // Namespace a's watch fails and lists again: b's objects stay.
        merged.relist("a", &["one", "four"]);
        assert_eq!(merged.keys(), ["a/four", "a/one", "b/three", "b/two"]);
    }

    #[test]
    fn an_object_missing_from_its_namespaces_relist_is_deleted() {
        let mut merged = Merged::of(&["a", "b"]);
        merged.relist("a", &["kept", "dropped"]);
        merged.relist("b", &["dropped"]);
        let done = merged.relist("a", &["kept"]);
        assert_eq!(done, Step::RelistDone { gone: vec!["a/dropped".to_owned()] });
        assert_eq!(merged.keys(), ["a/kept", "b/dropped"], "b's object of the same name is not a's");
    }

    #[test]
    fn an_object_created_after_the_relist_started_is_not_taken_for_gone() {
        let mut merged = Merged::of(&["a"]);
        merged.relist("a", &["old"]);
        merged.event("a", Event::Init);
        merged.event("a", Event::InitApply(object("a", "old")));
        merged.event("a", Event::InitApply(object("a", "new")));
        assert_eq!(merged.event("a", Event::InitDone), Step::RelistDone { gone: vec![] });
        assert_eq!(merged.keys(), ["a/new", "a/old"]);
    }

    #[test]
    fn changes_between_relists_pass_through() {
        let mut merged = Merged::of(&["a", "b"]);
        merged.relist("a", &[]);
        assert_eq!(merged.event("a", Event::Apply(object("a", "x"))), Step::Applied(object("a", "x")));
        assert_eq!(merged.event("a", Event::Delete(object("a", "x"))), Step::Deleted(object("a", "x")));
        assert!(merged.keys().is_empty());
    }

    #[test]
    fn listed_only_once_every_namespace_has_listed() {
        let mut merged = Merged::of(&["a", "b"]);
        assert!(!merged.relists.all_listed());
        merged.relist("a", &["one"]);
        assert!(!merged.relists.all_listed(), "b has not listed yet");
        merged.event("b", Event::Init);
        assert!(!merged.relists.all_listed(), "b's list is not done");
        merged.event("b", Event::InitDone);
        assert!(merged.relists.all_listed());
        merged.event("a", Event::Init);
        assert!(merged.relists.all_listed(), "a relist does not take back the first list");
    }

    #[test]
    fn a_single_watch_relists_every_key() {
        let mut relists = Relists::new([None]);
        let held = || vec!["a/one".to_owned(), "b/two".to_owned()];
        relists.step(None, Event::<ConfigMap>::Init, held);
        relists.step(None, Event::InitApply(object("b", "two")), Vec::new);
        let done = relists.step(None, Event::<ConfigMap>::InitDone, Vec::new);
        assert_eq!(done, Step::RelistDone { gone: vec!["a/one".to_owned()] });
        assert!(relists.all_listed());
        assert!(in_namespace("a/one", None) && in_namespace("a/one", Some("a")) && !in_namespace("ab/one", Some("a")));
    }
}

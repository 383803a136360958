//! What a kubelet hands the API container of one revision (pure): its environment and the files
//! of its secret volumes, resolved from the pod template and the Secrets it names.
//!
//! As the kubelet does: `envFrom` secrets first, then `env` in order (a later name wins);
//! `secretKeyRef` reads one key; a secret volume holds every key of its Secret, or only its
//! `items` at their paths; a mount shows the volume (or its `subPath`) at `mountPath`. A missing
//! Secret or key fails the container unless marked optional. Not modelled: `$(VAR)` expansion,
//! ConfigMaps, the downward API (the operator renders none of them).

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Secret, Volume, VolumeMount};
use secure_api_operator::workload::deployment::CONTAINER_NAME;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The environment and files of the container of `revision`. Values are secrets: `Debug` shows
/// names and paths only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub revision: String,
    pub env: BTreeMap<String, String>,
    /// Absolute path → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("revision", &self.revision)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Process {
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }
}

/// The API container: the one the operator names, else the first.
fn container(template: &PodTemplateSpec) -> Option<&Container> {
    let containers = &template.spec.as_ref()?.containers;
    containers.iter().find(|c| c.name == CONTAINER_NAME).or_else(|| containers.first())
}

/// The pod volume a mount shows.
fn volume<'a>(template: &'a PodTemplateSpec, mount: &VolumeMount) -> Option<&'a Volume> {
    template.spec.as_ref()?.volumes.iter().flatten().find(|v| v.name == mount.name)
}

/// The Secrets the API container reads: through `envFrom`, `secretKeyRef` and mounted volumes.
pub fn secrets_of(template: &PodTemplateSpec) -> BTreeSet<String> {
    let Some(container) = container(template) else { return BTreeSet::new() };
    let env_from = container.env_from.iter().flatten().filter_map(|e| Some(e.secret_ref.as_ref()?.name.clone()));
    let env = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some(e.value_from.as_ref()?.secret_key_ref.as_ref()?.name.clone()));
    let mounts = container.volume_mounts.iter().flatten();
    let volumes = mounts.filter_map(|m| volume(template, m)?.secret.as_ref()?.secret_name.clone());
    env_from.chain(env).chain(volumes).collect()
}

/// The container's environment and files; `secrets` by name (absent ones are missing). The
/// error names what is missing or unsupported, never a value.
pub fn resolve(
    revision: &str,
    template: &PodTemplateSpec,
    secrets: &BTreeMap<String, Secret>,
) -> Result<Process, String> {
    let container = container(template).ok_or("the pod template has no container")?;
    let mut process = Process { revision: revision.to_owned(), ..Process::default() };
    resolve_env(container, secrets, &mut process.env)?;
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volume(template, mount).ok_or_else(|| format!("volume {} is not in the pod", mount.name))?;
        let contents = volume_files(volume, secrets)?;
        process.files.extend(mounted(contents, mount));
    }
    Ok(process)
}

fn data(secret: &Secret) -> impl Iterator<Item = (&String, &Vec<u8>)> {
    secret.data.iter().flatten().map(|(key, value)| (key, &value.0))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn resolve_env(
    container: &Container,
    secrets: &BTreeMap<String, Secret>,
    env: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for source in container.env_from.iter().flatten() {
        let Some(reference) = &source.secret_ref else {
            return Err("envFrom other than secretRef is not modelled by the stand-in".into());
        };
        match secrets.get(&reference.name) {
            Some(secret) => {
                let prefix = source.prefix.as_deref().unwrap_or_default();
                env.extend(data(secret).map(|(key, value)| (format!("{prefix}{key}"), text(value))));
            }
            None if reference.optional == Some(true) => {}
            None => return Err(format!("envFrom: Secret {} not found", reference.name)),
        }
    }
    for variable in container.env.iter().flatten() {
        let Some(from) = &variable.value_from else {
            env.insert(variable.name.clone(), variable.value.clone().unwrap_or_default());
            continue;
        };
        let reference = from.secret_key_ref.as_ref().ok_or_else(|| {
            format!("env {}: only value and secretKeyRef are modelled by the stand-in", variable.name)
        })?;
        let value = secrets.get(&reference.name).and_then(|s| data(s).find(|(key, _)| **key == reference.key));
        match value {
            Some((_, value)) => {
                env.insert(variable.name.clone(), text(value));
            }
            None if reference.optional == Some(true) => {}
            None => {
                return Err(format!(
                    "env {}: key {} of Secret {} not found",
                    variable.name, reference.key, reference.name
                ));
            }
        }
    }
    Ok(())
}

/// A volume's files by their path inside it; none for a volume that is not a Secret's.
fn volume_files(volume: &Volume, secrets: &BTreeMap<String, Secret>) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let Some(source) = &volume.secret else { return Ok(BTreeMap::new()) };
    let name = source.secret_name.clone().unwrap_or_default();
    let optional = source.optional == Some(true);
    let Some(secret) = secrets.get(&name) else {
        return if optional {
            Ok(BTreeMap::new())
        } else {
            Err(format!("volume {}: Secret {name} not found", volume.name))
        };
    };
    let all: BTreeMap<&String, &Vec<u8>> = data(secret).collect();
    let Some(items) = &source.items else {
        return Ok(all.into_iter().map(|(key, value)| (key.clone(), value.clone())).collect());
    };
    let mut files = BTreeMap::new();
    for item in items {
        match all.get(&item.key) {
            Some(value) => {
                files.insert(item.path.clone(), (*value).clone());
            }
            None if optional => {}
            None => return Err(format!("volume {}: key {} of Secret {name} not found", volume.name, item.key)),
        }
    }
    Ok(files)
}

/// A volume's files at their absolute paths under a mount (of its `subPath` only, when set).
fn mounted(files: BTreeMap<String, Vec<u8>>, mount: &VolumeMount) -> impl Iterator<Item = (String, Vec<u8>)> {
    let root = mount.mount_path.trim_end_matches('/').to_owned();
    let sub = mount.sub_path.clone().unwrap_or_default().trim_matches('/').to_owned();
    files.into_iter().filter_map(move |(path, content)| {
        let relative = if sub.is_empty() {
            path
        } else if path == sub {
            // A file's subPath is mounted as that file.
            return Some((root.clone(), content));
        } else {
            path.strip_prefix(&format!("{sub}/"))?.to_owned()
        };
        Some((format!("{root}/{relative}"), content))
    })
}

#[cfg(test)]
mod tests;

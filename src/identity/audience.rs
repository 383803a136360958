//! The two audiences of Workload Identity Federation (pure): the one the Kubernetes token is
//! issued for, and the one STS is asked to exchange it at.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// How the operator reaches STS, from its flags.
#[derive(Clone, Debug, Default)]
pub struct Audiences {
    /// `--workload-identity-audience`: STS's `audience`. `None`: GKE's identity namespace of
    /// `project` at the issuer of the cluster's tokens.
    pub sts: Option<String>,
    /// `--service-account-token-audience`: the `aud` of the ServiceAccount tokens. `None`:
    /// derived from the STS audience.
    pub token: Option<String>,
    /// `--gcp-project`: the GKE identity namespace is `PROJECT.svc.id.goog`.
    pub project: Option<String>,
}

const IDENTITY_NAMESPACE_PREFIX: &str = "identitynamespace:";
const POOL_PREFIX: &str = "//iam.googleapis.com/";

impl Audiences {
    /// The audience to request ServiceAccount tokens for: GKE's `PROJECT.svc.id.goog`, or a
    /// pool provider's default allowed audience `https://iam.googleapis.com/projects/…/providers/P`.
    pub fn token_audience(&self) -> Result<String, String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        match self.sts.as_deref() {
            Some(pool) if pool.starts_with(POOL_PREFIX) => Ok(format!("https:{pool}")),
            Some(gke) if gke.starts_with(IDENTITY_NAMESPACE_PREFIX) => {
                let rest = &gke[IDENTITY_NAMESPACE_PREFIX.len()..];
                Ok(rest.split(':').next().unwrap_or_default().to_owned())
            }
            Some(other) => Err(format!(
                "--workload-identity-audience {other:?} is neither identitynamespace:… nor //iam.googleapis.com/…; set --service-account-token-audience too"
            )),
            None => self.identity_namespace(),
        }
    }

    /// STS's `audience` for a token issued by `issuer` (the cluster's service-account issuer).
    pub fn sts_audience(&self, issuer: Option<&str>) -> Result<String, String> {
        if let Some(sts) = &self.sts {
            return Ok(sts.clone());
        }
        let namespace = self.identity_namespace()?;
        let issuer = issuer.ok_or("the ServiceAccount token names no issuer; set --workload-identity-audience")?;
        Ok(format!("{IDENTITY_NAMESPACE_PREFIX}{namespace}:{issuer}"))
    }

    fn identity_namespace(&self) -> Result<String, String> {
        match &self.project {
            Some(project) => Ok(format!("{project}.svc.id.goog")),
            None => Err("set --gcp-project (GKE) or --workload-identity-audience (a workload identity pool)".into()),
        }
    }
}

/// The Google principal a ServiceAccount's federated token stands for, as IAM policies name it,
/// from the STS audience it was exchanged at. GKE's pool is named by the project's number, which
/// the operator does not know: it stays `PROJECT_NUMBER`. A pool provider's subject is the
/// token's `sub` under the default attribute mapping (`google.subject=assertion.sub`).
pub fn principal(sts_audience: &str, namespace: &str, name: &str) -> String {
    if let Some(rest) = sts_audience.strip_prefix(IDENTITY_NAMESPACE_PREFIX) {
        let pool = rest.split(':').next().unwrap_or_default();
        return format!(
            "principal://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/{pool}/subject/ns/{namespace}/sa/{name}"
        );
    }
    match sts_audience.strip_prefix(POOL_PREFIX).and_then(|path| path.split_once("/providers/")) {
        Some((pool, _)) => {
            format!("principal://iam.googleapis.com/{pool}/subject/system:serviceaccount:{namespace}:{name}")
        }
        None => format!("the federated identity of ServiceAccount {namespace}/{name}"),
    }
}

/// The `iss` claim of a JWT, read without verifying it: the token comes straight from our own
/// API server, and STS verifies it anyway.
pub fn issuer(jwt: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Claims {
        iss: Option<String>,
    }
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Claims>(&bytes).ok()?.iss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gke() -> Audiences {
        Audiences { project: Some("demo-project".into()), ..Audiences::default() }
    }

    #[test]
    fn gke_defaults_come_from_the_project_and_the_issuer() {
        assert_eq!(gke().token_audience().as_deref(), Ok("demo-project.svc.id.goog"));
        let issuer = "https://container.googleapis.com/v1/projects/demo-project/locations/europe-west1/clusters/c";
        assert_eq!(
            gke().sts_audience(Some(issuer)),
            Ok(format!("identitynamespace:demo-project.svc.id.goog:{issuer}"))
        );
        assert!(gke().sts_audience(None).is_err());
        assert!(Audiences::default().token_audience().is_err());
    }

    #[test]
    fn a_pool_provider_audience_gives_its_default_allowed_token_audience() {
        let pool = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/k";
        let audiences = Audiences { sts: Some(pool.into()), ..Audiences::default() };
        assert_eq!(audiences.token_audience(), Ok(format!("https:{pool}")));
        assert_eq!(audiences.sts_audience(None).as_deref(), Ok(pool));
        let explicit = Audiences { token: Some("sts.example".into()), ..audiences };
        assert_eq!(explicit.token_audience().as_deref(), Ok("sts.example"));
    }

    #[test]
    fn an_identity_namespace_audience_names_the_token_audience() {
        let sts = "identitynamespace:other-project.svc.id.goog:https://issuer.example";
        let audiences = Audiences { sts: Some(sts.into()), ..gke() };
        assert_eq!(audiences.token_audience().as_deref(), Ok("other-project.svc.id.goog"));
    }

    #[test]
    fn the_principal_follows_the_pool() {
        let gke = "identitynamespace:demo-project.svc.id.goog:https://issuer.example";
        assert_eq!(
            principal(gke, "team-a", "app"),
            "principal://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/demo-project.svc.id.goog/subject/ns/team-a/sa/app"
        );
        let pool = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/k";
        assert_eq!(
            principal(pool, "team-a", "app"),
            "principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/subject/system:serviceaccount:team-a:app"
        );
        assert!(principal("elsewhere", "team-a", "app").contains("team-a/app"));
    }

    #[test]
    fn the_issuer_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://kubernetes.default.svc.cluster.local","sub":"x"}"#);
        assert_eq!(
            issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://kubernetes.default.svc.cluster.local")
        );
        assert_eq!(issuer("not-a-jwt"), None);
    }
}

//! Resource names and the REST methods they are called with: `projects/P/topics/T[:verb]` and
//! `projects/P/subscriptions/S[:verb]` under `/v1/`, IAM's `getIamPolicy` (GET, as Pub/Sub maps
//! it) and `setIamPolicy` included.

use crate::emulator::gcp::rest::split_verb;
use crate::emulator::gcp::rpc::RpcError;
use hyper::Method;
use std::fmt;

/// `projects/P/topics/T`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName {
    pub project: String,
    pub topic: String,
}

impl TopicName {
    pub fn new(project: &str, topic: &str) -> Self {
        Self { project: project.to_owned(), topic: topic.to_owned() }
    }

    /// Reads a full name, `projects/P/topics/T`; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", project, "topics", topic] if !project.is_empty() && !topic.is_empty() => {
                Some(Self::new(project, topic))
            }
            _ => None,
        }
    }

    /// `INVALID_ARGUMENT` unless the id follows Google's rules (see [`is_valid_id`]).
    pub fn validate(&self) -> Result<(), RpcError> {
        validate_id("topics", &self.to_string(), &self.topic)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/topics/{}", self.project, self.topic)
    }
}

/// `projects/P/subscriptions/S`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionName {
    pub project: String,
    pub subscription: String,
}

impl SubscriptionName {
    pub fn new(project: &str, subscription: &str) -> Self {
        Self { project: project.to_owned(), subscription: subscription.to_owned() }
    }

    /// `INVALID_ARGUMENT` unless the id follows Google's rules (see [`is_valid_id`]).
    pub fn validate(&self) -> Result<(), RpcError> {
        validate_id("subscriptions", &self.to_string(), &self.subscription)
    }
}

impl fmt::Display for SubscriptionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/subscriptions/{}", self.project, self.subscription)
    }
}

/// One Pub/Sub REST method and the resource it is called on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    CreateTopic(TopicName),
    GetTopic(TopicName),
    DeleteTopic(TopicName),
    /// The project.
    ListTopics(String),
    Publish(TopicName),
    GetTopicPolicy(TopicName),
    SetTopicPolicy(TopicName),
    CreateSubscription(SubscriptionName),
    GetSubscription(SubscriptionName),
    DeleteSubscription(SubscriptionName),
    /// The project.
    ListSubscriptions(String),
    Pull(SubscriptionName),
    Acknowledge(SubscriptionName),
    ModifyAckDeadline(SubscriptionName),
    GetSubscriptionPolicy(SubscriptionName),
    SetSubscriptionPolicy(SubscriptionName),
}

impl Call {
    /// The method id used by the counters and faults, e.g. `pubsub.subscriptions.pull`.
    pub fn method_id(&self) -> &'static str {
        match self {
            Self::CreateTopic(_) => "pubsub.topics.create",
            Self::GetTopic(_) => "pubsub.topics.get",
            Self::DeleteTopic(_) => "pubsub.topics.delete",
            Self::ListTopics(_) => "pubsub.topics.list",
            Self::Publish(_) => "pubsub.topics.publish",
            Self::GetTopicPolicy(_) => "pubsub.topics.getIamPolicy",
            Self::SetTopicPolicy(_) => "pubsub.topics.setIamPolicy",
            Self::CreateSubscription(_) => "pubsub.subscriptions.create",
            Self::GetSubscription(_) => "pubsub.subscriptions.get",
            Self::DeleteSubscription(_) => "pubsub.subscriptions.delete",
            Self::ListSubscriptions(_) => "pubsub.subscriptions.list",
            Self::Pull(_) => "pubsub.subscriptions.pull",
            Self::Acknowledge(_) => "pubsub.subscriptions.acknowledge",
            Self::ModifyAckDeadline(_) => "pubsub.subscriptions.modifyAckDeadline",
            Self::GetSubscriptionPolicy(_) => "pubsub.subscriptions.getIamPolicy",
            Self::SetSubscriptionPolicy(_) => "pubsub.subscriptions.setIamPolicy",
        }
    }

    /// The IAM permission the call needs, as Google maps its methods: pulling, acknowledging and
    /// extending deadlines all take `consume`.
    pub fn permission(&self) -> &'static str {
        match self {
            Self::Pull(_) | Self::Acknowledge(_) | Self::ModifyAckDeadline(_) => "pubsub.subscriptions.consume",
            other => other.method_id(),
        }
    }

    /// The resource name the call is made on, as written in the path.
    pub fn resource(&self) -> String {
        match self {
            Self::CreateTopic(name)
            | Self::GetTopic(name)
            | Self::DeleteTopic(name)
            | Self::Publish(name)
            | Self::GetTopicPolicy(name)
            | Self::SetTopicPolicy(name) => name.to_string(),
            Self::ListTopics(project) => format!("projects/{project}/topics"),
            Self::CreateSubscription(name)
            | Self::GetSubscription(name)
            | Self::DeleteSubscription(name)
            | Self::Pull(name)
            | Self::Acknowledge(name)
            | Self::ModifyAckDeadline(name)
            | Self::GetSubscriptionPolicy(name)
            | Self::SetSubscriptionPolicy(name) => name.to_string(),
            Self::ListSubscriptions(project) => format!("projects/{project}/subscriptions"),
        }
    }

    /// The call that `method` on `path` (after `/v1/`, percent-decoded) makes, if any. Ids are
    /// checked by the handlers, so a bad one is `INVALID_ARGUMENT` rather than no route.
    pub fn parse(method: &Method, path: &str) -> Option<Self> {
        let (path, verb) = split_verb(path);
        let segments: Vec<&str> = path.split('/').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return None;
        }
        match (segments.as_slice(), verb) {
            (["projects", project, "topics"], None) if method == Method::GET => {
                Some(Self::ListTopics((*project).to_owned()))
            }
            (["projects", project, "subscriptions"], None) if method == Method::GET => {
                Some(Self::ListSubscriptions((*project).to_owned()))
            }
            (["projects", project, "topics", topic], verb) => topic_call(method, verb, TopicName::new(project, topic)),
            (["projects", project, "subscriptions", subscription], verb) => {
                subscription_call(method, verb, SubscriptionName::new(project, subscription))
            }
            _ => None,
        }
    }
}

fn topic_call(method: &Method, verb: Option<&str>, name: TopicName) -> Option<Call> {
    match (method, verb) {
        (&Method::PUT, None) => Some(Call::CreateTopic(name)),
        (&Method::GET, None) => Some(Call::GetTopic(name)),
        (&Method::DELETE, None) => Some(Call::DeleteTopic(name)),
        (&Method::POST, Some("publish")) => Some(Call::Publish(name)),
        (&Method::GET, Some("getIamPolicy")) => Some(Call::GetTopicPolicy(name)),
        (&Method::POST, Some("setIamPolicy")) => Some(Call::SetTopicPolicy(name)),
        _ => None,
    }
}

fn subscription_call(method: &Method, verb: Option<&str>, name: SubscriptionName) -> Option<Call> {
    match (method, verb) {
        (&Method::PUT, None) => Some(Call::CreateSubscription(name)),
        (&Method::GET, None) => Some(Call::GetSubscription(name)),
        (&Method::DELETE, None) => Some(Call::DeleteSubscription(name)),
        (&Method::POST, Some("pull")) => Some(Call::Pull(name)),
        (&Method::POST, Some("acknowledge")) => Some(Call::Acknowledge(name)),
        (&Method::POST, Some("modifyAckDeadline")) => Some(Call::ModifyAckDeadline(name)),
        (&Method::GET, Some("getIamPolicy")) => Some(Call::GetSubscriptionPolicy(name)),
        (&Method::POST, Some("setIamPolicy")) => Some(Call::SetSubscriptionPolicy(name)),
        _ => None,
    }
}

/// Topic and subscription ids: 3 to 255 characters from `[A-Za-z0-9-_.~+%]`, starting with a
/// letter and not with `goog` (Google's emulator enforces the same).
pub fn is_valid_id(id: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b);
    (3..=255).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && id.bytes().all(allowed)
        && !id.to_ascii_lowercase().starts_with("goog")
}

fn validate_id(collection: &str, name: &str, id: &str) -> Result<(), RpcError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        // Google's emulator's wording.
        Err(RpcError::invalid_argument(format!("Invalid [{collection}] name: (name={name})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str) -> Option<Call> {
        Call::parse(&method, path)
    }

    #[test]
    fn every_method_has_its_google_method_id() {
        let cases = [
            (Method::PUT, "projects/p/topics/events", "pubsub.topics.create"),
            (Method::GET, "projects/p/topics/events", "pubsub.topics.get"),
            (Method::DELETE, "projects/p/topics/events", "pubsub.topics.delete"),
            (Method::GET, "projects/p/topics", "pubsub.topics.list"),
            (Method::POST, "projects/p/topics/events:publish", "pubsub.topics.publish"),
            (Method::PUT, "projects/p/subscriptions/sub", "pubsub.subscriptions.create"),
            (Method::GET, "projects/p/subscriptions/sub", "pubsub.subscriptions.get"),
            (Method::DELETE, "projects/p/subscriptions/sub", "pubsub.subscriptions.delete"),
            (Method::GET, "projects/p/subscriptions", "pubsub.subscriptions.list"),
            (Method::POST, "projects/p/subscriptions/sub:pull", "pubsub.subscriptions.pull"),
            (Method::POST, "projects/p/subscriptions/sub:acknowledge", "pubsub.subscriptions.acknowledge"),
            (Method::POST, "projects/p/subscriptions/sub:modifyAckDeadline", "pubsub.subscriptions.modifyAckDeadline"),
            (Method::GET, "projects/p/topics/events:getIamPolicy", "pubsub.topics.getIamPolicy"),
            (Method::POST, "projects/p/topics/events:setIamPolicy", "pubsub.topics.setIamPolicy"),
            (Method::GET, "projects/p/subscriptions/sub:getIamPolicy", "pubsub.subscriptions.getIamPolicy"),
            (Method::POST, "projects/p/subscriptions/sub:setIamPolicy", "pubsub.subscriptions.setIamPolicy"),
        ];
        for (method, path, id) in cases {
            assert_eq!(parse(method, path).map(|c| c.method_id()), Some(id), "{path}");
        }
    }

    #[test]
    fn consuming_methods_need_the_consume_permission_on_the_subscription() {
        let pull = parse(Method::POST, "projects/p/subscriptions/sub:pull");
        assert_eq!(pull.as_ref().map(Call::permission), Some("pubsub.subscriptions.consume"));
        assert_eq!(pull.map(|c| c.resource()), Some("projects/p/subscriptions/sub".to_owned()));
        let list = parse(Method::GET, "projects/p/topics");
        assert_eq!(list.map(|c| c.resource()), Some("projects/p/topics".to_owned()));
    }

    #[test]
    fn unknown_paths_verbs_and_methods_do_not_parse() {
        assert_eq!(parse(Method::POST, "projects/p/topics/events"), None);
        assert_eq!(parse(Method::POST, "projects/p/subscriptions/sub:seek"), None);
        assert_eq!(parse(Method::GET, "projects/p/topics/events:setIamPolicy"), None);
        assert_eq!(parse(Method::POST, "projects/p/subscriptions/sub:getIamPolicy"), None, "GET, as Pub/Sub maps it");
        assert_eq!(parse(Method::GET, "projects/p/topics/events/subscriptions"), None);
        assert_eq!(parse(Method::GET, "projects//topics/events"), None);
        assert_eq!(parse(Method::GET, "projects/p/secrets/s"), None);
    }

    #[test]
    fn ids_follow_googles_rules() {
        assert!(is_valid_id("secret-events"));
        assert!(is_valid_id("a+b.c~d_e-f%20"));
        assert!(!is_valid_id("ab"), "at least 3 characters");
        assert!(!is_valid_id("1abc"), "starts with a letter");
        assert!(!is_valid_id("google-events"), "not goog");
        assert!(!is_valid_id("a/b/c"));
        assert!(!is_valid_id(&"a".repeat(256)));
        let error = SubscriptionName::new("p", "s1").validate().err().map(|e| (e.http_status, e.message));
        assert_eq!(error, Some((400, "Invalid [subscriptions] name: (name=projects/p/subscriptions/s1)".into())));
    }

    #[test]
    fn full_topic_names_parse() {
        assert_eq!(TopicName::parse("projects/p/topics/events"), Some(TopicName::new("p", "events")));
        assert_eq!(TopicName::parse("projects/p/subscriptions/events"), None);
        assert_eq!(TopicName::parse("events"), None);
    }
}

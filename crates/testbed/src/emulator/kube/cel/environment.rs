//! The functions a rule may call, and the one `cel::Context` that holds them: the `cel` crate's
//! standard functions, kube-cel's Kubernetes string library, and `functions`' corrections.

use std::sync::LazyLock;

use kube_cel::KubeCelExt;
use kube_cel::cel::Context;

use super::functions;

/// Functions callable as `f(x, ...)` (`strings.quote` as written).
pub const GLOBAL_FUNCTIONS: [&str; 10] =
    ["size", "matches", "duration", "int", "uint", "double", "string", "bool", "dyn", "strings.quote"];

/// Functions callable as `x.f(...)`: CEL's standard methods and Kubernetes' string library.
pub const METHODS: [&str; 20] = [
    "size",
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "reverse",
];

/// Built once: every evaluation binds `self` and `oldSelf` in a scope inside it.
static ROOT: LazyLock<Context<'static>> = LazyLock::new(|| {
    let mut context = Context::default().with_all();
    functions::register(&mut context);
    context
});

pub fn root() -> &'static Context<'static> {
    &ROOT
}

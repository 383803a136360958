//! A fault schedule: from one seed, the steps of a run of the seed scenario — what the user does
//! (rotations, disables and re-enables, spec edits) and what goes wrong around it (crashes,
//! API errors, latency, lost watches, bad checksums, failed operations, bad deliveries). Pure:
//! the same seed always gives the same schedule, so a failing seed can be replayed.

use std::fmt;

/// A small, fast, seedable generator (SplitMix64): reproducible, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `true` with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The seed's three secrets, by their SecretRef names.
pub const SECRETS: [&str; 3] = ["db", "keys", "config"];

/// What the user does in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new version of a secret.
    Rotate(&'static str),
    /// The newest version of a secret disabled (re-enabled by a later step or at the end).
    DisableLatest(&'static str),
    /// Every disabled version enabled again.
    EnableAll,
    /// The service's image tag bumped (a new template with the same secret versions).
    EditImage,
    /// The service's replicas changed (no new template).
    EditReplicas,
    /// A route added to or removed from the gateway (a new API config).
    EditRoutes,
    /// Nothing: faults only.
    Wait,
}

/// Where a crash lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// A random moment after the step's action.
    Anytime,
    /// After the access call of a rotation, while its Secret write is in flight.
    AfterAccess,
    /// After the snapshots of a rotation, while the Deployment write is in flight.
    BeforeDeployment,
    /// While the API Gateway operation of a route edit is pending.
    GatewayPending,
    /// Once the canary of a rotation has pods: between its steps, or around its abort.
    DuringTrial,
}

/// What goes wrong in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The operator aborted without a graceful shutdown, then started again with fresh memory.
    Crash(CrashPoint),
    /// The next `times` requests of `verb` on `resource` answered with `status`.
    KubeStatus { verb: &'static str, resource: &'static str, status: u16, times: usize },
    /// Requests on `resource` delayed by `millis` for the next `times`.
    KubeLatency { resource: &'static str, millis: u64, times: usize },
    /// Every open watch closed.
    DropWatches,
    /// The change history forgotten: resuming a watch gets 410 Gone.
    CompactHistory,
    /// The next `times` access calls answered with `status`.
    AccessStatus { status: u16, times: usize },
    /// The next access call slower than the client's timeout.
    AccessTimeout,
    /// The next `times` access calls carry a wrong CRC32C.
    WrongChecksum { times: usize },
    /// A version added and disabled before the operator may have read it.
    DisabledMidFlight(&'static str),
    /// The next API config operation fails.
    GatewayOperationFails,
    /// The next `times` API Gateway calls of `method` answered with 503.
    GatewayUnavailable { method: &'static str, times: usize },
    /// Notifications delivered `duplicate` extra times, delayed, reordered, or acks dropped.
    Deliveries { duplicate: u32, delay_millis: u64, reorder: bool, drop_acks: u32 },
    /// The next `count` notifications published are never delivered.
    LostNotifications { count: u32 },
    /// The leader shut down gracefully (it releases the Lease); the standby takes over and a
    /// new replica joins as standby.
    HandOver,
    /// The next Lease writes answered with 503, long enough for the leader to miss its renew
    /// deadline: it stops reconciling and exits, and is started again.
    LeaseWritesFail,
}

impl Fault {
    /// The kind, as the program's figures count it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Crash(CrashPoint::Anytime) => "crash (any time)",
            Self::Crash(CrashPoint::AfterAccess) => "crash (after access, Secret write in flight)",
            Self::Crash(CrashPoint::BeforeDeployment) => "crash (after snapshots, Deployment write in flight)",
            Self::Crash(CrashPoint::GatewayPending) => "crash (API Gateway operation pending)",
            Self::Crash(CrashPoint::DuringTrial) => "crash (canary trial under way)",
            Self::KubeStatus { status: 409, .. } => "kube 409 conflict",
            Self::KubeStatus { status: 429, .. } => "kube 429",
            Self::KubeStatus { status: 500, .. } => "kube 500",
            Self::KubeStatus { .. } => "kube 503",
            Self::KubeLatency { .. } => "kube latency",
            Self::DropWatches => "kube watches dropped",
            Self::CompactHistory => "kube history compacted (410 Gone)",
            Self::AccessStatus { status: 429, .. } => "secret manager 429",
            Self::AccessStatus { .. } => "secret manager 503",
            Self::AccessTimeout => "secret manager timeout",
            Self::WrongChecksum { .. } => "secret manager wrong CRC32C",
            Self::DisabledMidFlight(_) => "version disabled mid-flight",
            Self::GatewayOperationFails => "api gateway operation failed",
            Self::GatewayUnavailable { .. } => "api gateway 503",
            Self::Deliveries { .. } => "pub/sub duplicated/delayed/reordered/unacked",
            Self::LostNotifications { .. } => "pub/sub notifications lost",
            Self::HandOver => "leader hand-over (graceful)",
            Self::LeaseWritesFail => "leader loses its Lease (renewals refused)",
        }
    }
}

/// One step: an action, the faults around it, and a pause after it.
#[derive(Clone, Debug)]
pub struct Step {
    pub faults: Vec<Fault>,
    pub action: Action,
    pub pause_millis: u64,
    /// A rotation's new version is one whose pods never become Ready (canary schedules).
    pub bad_version: bool,
}

/// A whole run.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub seed: u64,
    /// Rotations also announced through Pub/Sub (else polling only).
    pub notifications: bool,
    /// Two replicas with leader election (else one operator without it).
    pub leader_election: bool,
    /// The service rolls out by canary (else by rolling update).
    pub canary: bool,
    pub steps: Vec<Step>,
}

const KUBE_RESOURCES: [&str; 5] =
    ["secrets", "secretrefs/status", "deployments", "secureapiservices/status", "gatewayconfigs/status"];

/// The schedule of `seed`: `steps` steps.
pub fn generate(seed: u64, steps: usize) -> Schedule {
    let mut rng = Rng::new(seed);
    // Lost notifications and leader election came later: drawn from a stream of their own, so
    // a seed without them plays exactly as it did before they existed.
    let mut later = Rng::new(!seed);
    // Canaries came later still: a third stream.
    let mut canaries = Rng::new(seed.rotate_left(29));
    let notifications = rng.percent(50);
    let leader_election = later.percent(50);
    let canary = canaries.percent(50);
    let steps = (0..steps)
        .map(|_| {
            let mut step = step(&mut rng, notifications);
            step.faults.extend(later_faults(&mut later, notifications, leader_election));
            if canary {
                let rotates = matches!(step.action, Action::Rotate(_));
                step.bad_version = rotates && canaries.percent(40);
                if rotates && canaries.percent(25) {
                    step.faults.retain(|fault| !matches!(fault, Fault::Crash(_)));
                    step.faults.push(Fault::Crash(CrashPoint::DuringTrial));
                }
            }
            step
        })
        .collect();
    Schedule { seed, notifications, leader_election, canary, steps }
}

/// The faults of the later stream for one step.
fn later_faults(rng: &mut Rng, notifications: bool, leader_election: bool) -> Vec<Fault> {
    let mut faults = vec![];
    if notifications && rng.percent(15) {
        faults.push(Fault::LostNotifications { count: 1 + rng.below(3) as u32 });
    }
    if leader_election && rng.percent(20) {
        faults.push(rng.pick(&[Fault::HandOver, Fault::HandOver, Fault::LeaseWritesFail]));
    }
    faults
}

fn step(rng: &mut Rng, notifications: bool) -> Step {
    let action = match rng.below(12) {
        0..=4 => Action::Rotate(rng.pick(&SECRETS)),
        5 => Action::DisableLatest(rng.pick(&SECRETS)),
        6 => Action::EnableAll,
        7 => Action::EditImage,
        8 => Action::EditReplicas,
        9 | 10 => Action::EditRoutes,
        _ => Action::Wait,
    };
    let mut faults: Vec<Fault> = (0..rng.below(3)).map(|_| fault(rng, notifications)).collect();
    if rng.percent(30) {
        faults.push(Fault::Crash(crash_point(rng, action)));
    }
    Step { faults, action, pause_millis: 50 + rng.below(350), bad_version: false }
}

/// A crash point that the action can reach.
fn crash_point(rng: &mut Rng, action: Action) -> CrashPoint {
    match action {
        Action::Rotate(_) => rng.pick(&[CrashPoint::Anytime, CrashPoint::AfterAccess, CrashPoint::BeforeDeployment]),
        Action::EditRoutes => rng.pick(&[CrashPoint::Anytime, CrashPoint::GatewayPending]),
        Action::EditImage => rng.pick(&[CrashPoint::Anytime, CrashPoint::BeforeDeployment]),
        _ => CrashPoint::Anytime,
    }
}

fn fault(rng: &mut Rng, notifications: bool) -> Fault {
    let times = 1 + rng.below(3) as usize;
    match rng.below(if notifications { 13 } else { 12 }) {
        0 => Fault::KubeStatus { verb: "patch", resource: rng.pick(&KUBE_RESOURCES), status: 409, times },
        1 => {
            let status = rng.pick(&[429, 500, 503]);
            Fault::KubeStatus { verb: rng.pick(&["get", "patch"]), resource: rng.pick(&KUBE_RESOURCES), status, times }
        }
        2 => Fault::KubeLatency { resource: rng.pick(&KUBE_RESOURCES), millis: 50 + rng.below(250), times },
        3 => Fault::DropWatches,
        4 => Fault::CompactHistory,
        5 => Fault::AccessStatus { status: rng.pick(&[429, 503]), times },
        6 => Fault::AccessTimeout,
        7 => Fault::WrongChecksum { times },
        8 => Fault::DisabledMidFlight(rng.pick(&SECRETS)),
        9 => Fault::GatewayOperationFails,
        10 | 11 => Fault::GatewayUnavailable {
            method: rng.pick(&[
                "apigateway.apiConfigs.create",
                "apigateway.gateways.patch",
                "apigateway.operations.get",
            ]),
            times,
        },
        _ => Fault::Deliveries {
            duplicate: rng.below(3) as u32,
            delay_millis: rng.pick(&[0, 0, 200, 600]),
            reorder: rng.percent(50),
            drop_acks: rng.below(3) as u32,
        },
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} (notifications: {}, leader election: {}, canary: {})",
            self.seed, self.notifications, self.leader_election, self.canary
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            let bad = if step.bad_version { " (a bad version)" } else { "" };
            writeln!(f, "  {i:2}: {:?}{bad} with {:?}, then {} ms", step.action, step.faults, step.pause_millis)?;
        }
        Ok(())
    }
}

#[test]
fn a_seed_always_gives_the_same_schedule_and_seeds_differ() {
    let a = generate(7, 12).to_string();
    assert_eq!(a, generate(7, 12).to_string());
    assert_ne!(a, generate(8, 12).to_string());
    let kinds: std::collections::BTreeSet<&str> =
        (0..200).flat_map(|seed| generate(seed, 12).steps).flat_map(|s| s.faults).map(|f| f.kind()).collect();
    assert_eq!(kinds.len(), 23, "every kind of fault is drawn by some seed: {kinds:?}");
}

#[test]
fn the_ci_seeds_try_canaries_with_bad_versions_and_crash_during_their_trials() {
    let ci: Vec<Schedule> = (1..=20).map(|seed| generate(seed, 10)).collect();
    let canaries = ci.iter().filter(|s| s.canary).count();
    let bad = ci.iter().flat_map(|s| &s.steps).filter(|step| step.bad_version).count();
    let crashes = ci.iter().flat_map(|s| &s.steps).flat_map(|step| &step.faults);
    let during_trials = crashes.filter(|f| **f == Fault::Crash(CrashPoint::DuringTrial)).count();
    assert!(
        canaries >= 5 && bad >= 5 && during_trials >= 3,
        "{canaries} canaries, {bad} bad versions, {during_trials} crashes in trials"
    );
    eprintln!("CI seeds: {canaries} canary schedules, {bad} bad versions, {during_trials} crashes during a trial");
}

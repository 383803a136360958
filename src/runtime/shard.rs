//! `--shard N/M`: M operator Deployments split the objects between them, each reconciling the
//! objects whose `namespace/name` hashes to its index. The hash is FNV-1a (64 bit), fixed here
//! so that every replica and every version of the operator agrees on who owns what.

use kube::Resource;
use std::fmt;
use std::str::FromStr;

/// The part of the objects one operator reconciles: index `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Everything: one operator.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether `namespace/name` belongs to this shard.
    pub fn owns_key(&self, namespace: &str, name: &str) -> bool {
        self.count <= 1
            || fnv1a([namespace.as_bytes(), b"/", name.as_bytes()]) % u64::from(self.count) == u64::from(self.index)
    }

    pub fn owns<K: Resource>(&self, object: &K) -> bool {
        let meta = object.meta();
        self.owns_key(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
    }

    /// Whether there is more than one shard.
    pub fn is_split(&self) -> bool {
        self.count > 1
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let wrong = || format!("{value:?} is not a shard: expected N/M with 0 <= N < M, e.g. 0/2");
        let (index, count) = value.split_once('/').ok_or_else(wrong)?;
        let index: u32 = index.trim().parse().map_err(|_| wrong())?;
        let count: u32 = count.trim().parse().map_err(|_| wrong())?;
        if count == 0 || index >= count {
            return Err(wrong());
        }
        Ok(Self { index, count })
    }
}

fn fnv1a<const N: usize>(parts: [&[u8]; N]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    parts.iter().flat_map(|part| part.iter()).fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn parses_n_of_m_and_refuses_the_rest() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["", "3", "3/3", "0/0", "-1/2", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_cover_every_object_exactly_once_and_evenly() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut per_shard = [0usize; 3];
        for i in 0..3000 {
            let name = format!("secret-{i}");
            let owners: Vec<usize> = (0..3).filter(|&s| shards[s].owns_key("default", &name)).collect();
            assert_eq!(owners.len(), 1, "{name}");
            per_shard[owners[0]] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 800), "{per_shard:?}");
    }

    #[test]
    fn the_hash_is_fixed_across_versions() {
        // FNV-1a 64 of "default/a" — a change here reassigns every object of every cluster.
        assert_eq!(super::fnv1a([b"default", b"/", b"a"]), 0x62a3_dacc_164a_3626);
        assert!(Shard::ALL.owns_key("any", "thing"));
    }
}
